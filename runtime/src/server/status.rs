//! The HTTP status of an engine's refusal, as dockerd 20.10 sends it: Docker's errors carry a
//! kind (moby's `errdefs`) that the daemon maps to a status, and the docker CLI reads the
//! status, not only the message (a 404 becomes "Error: No such container: x", a 404 on create
//! makes it pull). The engine's messages are Docker's own texts, so the kind is read from them.

use axum::http::StatusCode;

/// Docker's message patterns, by the status dockerd answers them with; the first match wins.
const KINDS: &[(StatusCode, &[&str])] = &[
    // A legacy link to a container that does not exist is a bad request (moby#39823), not
    // a missing container.
    (StatusCode::BAD_REQUEST, &["ould not get container for"]),
    (
        StatusCode::NOT_FOUND,
        &[
            "No such container",
            "No such image",
            "No such exec instance",
            "not found",
            "is not available: scenarios run busybox",
            "pull access denied",
        ],
    ),
    (
        StatusCode::CONFLICT,
        &[
            "Conflict.",
            "You cannot remove a running container",
            "is not running",
            "cannot join network of a non running container",
            "is already in progress",
        ],
    ),
    (
        StatusCode::FORBIDDEN,
        &[
            "Pool overlaps",
            "already exists",
            "has active endpoints",
            "operation is not permitted on predefined",
            "not manually attachable",
        ],
    ),
    (
        StatusCode::SERVICE_UNAVAILABLE,
        &[
            "This node is not a swarm manager",
            "This node is not part of a swarm",
            "This node is already part of a swarm",
            "Cannot connect to the Docker daemon",
        ],
    ),
    (
        StatusCode::BAD_REQUEST,
        &[
            "Invalid container name",
            "Renaming a container with the same name",
            "Neither old nor new names may be empty",
            "invalid",
            "Invalid",
            "conflicting options",
            "user specified IP address is supported",
            "container cannot be",
            "container sharing network namespace",
            "doesn't support",
            "must be",
            "failed to parse",
            "rpc error: code = InvalidArgument",
        ],
    ),
];

/// The status dockerd answers `message` with (500 for what it does not classify).
pub fn status_of(message: &str) -> StatusCode {
    KINDS
        .iter()
        .find(|(_, patterns)| patterns.iter().any(|p| message.contains(p)))
        .map_or(StatusCode::INTERNAL_SERVER_ERROR, |(status, _)| *status)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("No such container: web", 404)]
    #[case("network nope not found", 404)]
    #[case("No such image: nginx:latest", 404)]
    #[case("could not get container for bogus: No such container: bogus", 400)]
    #[case("Renaming a container with the same name as its current name", 400)]
    #[case(
        "Conflict. The container name \"/web\" is already in use by container \"0123\". You have to remove (or rename) that container to be able to reuse that name.",
        409
    )]
    #[case("Container 0123 is not running", 409)]
    #[case(
        "You cannot remove a running container 0123. Stop the container before attempting removal or force remove",
        409
    )]
    #[case("Pool overlaps with other one on this address space", 403)]
    #[case("network with name app already exists", 403)]
    #[case(
        "error while removing network: network app id 0123 has active endpoints",
        403
    )]
    #[case("operation is not permitted on predefined bridge network ", 403)]
    #[case(
        "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state.",
        503
    )]
    #[case(
        "Invalid container name (a), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
        400
    )]
    #[case("invalid CIDR address: 10.0.0.0/33", 400)]
    #[case(
        "user specified IP address is supported on user defined networks only",
        400
    )]
    #[case("netlink: File exists (os error 17)", 500)]
    fn refusals_get_dockerds_status(#[case] message: &str, #[case] status: u16) {
        assert_eq!(status_of(message).as_u16(), status, "{message}");
    }
}
