//! `drydock doctor`: the kernel feature table.

use std::process::ExitCode;

use drydock_netsim::KernelFeatures;
use drydock_runtime::fallback::Fallback;

use super::table;

pub(crate) fn run(json: bool) -> anyhow::Result<ExitCode> {
    let features = super::runtime()?.block_on(KernelFeatures::probe())?;
    let rows = features.statuses().iter().map(|status| {
        let kernel = match &status.kernel {
            Ok(()) if status.forced_absent => "yes (forced absent)".to_string(),
            Ok(()) => "yes".to_string(),
            Err(why) => format!("no ({why})"),
        };
        let uses = if status.uses_kernel() {
            "kernel".to_string()
        } else {
            match Fallback::of(status.feature) {
                Fallback::Userspace(what) => format!("userspace: {what}"),
                Fallback::Planned(what) => format!("nothing yet (planned userspace: {what})"),
                Fallback::None(what) => format!("nothing: {what}"),
            }
        };
        (status.feature.name(), status.kernel.is_ok(), kernel, uses)
    });
    if json {
        let items: Vec<serde_json::Value> = rows
            .map(|(name, present, kernel, uses)| {
                serde_json::json!({ "feature": name, "kernel": present, "detail": kernel, "drydock_uses": uses })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
    } else {
        let uname = nix::sys::utsname::uname()?;
        println!(
            "kernel {} ({}), {}",
            uname.release().to_string_lossy(),
            uname.machine().to_string_lossy(),
            if drydock_netsim::userns::in_initial()? {
                "privileged"
            } else {
                "rootless (user namespace)"
            }
        );
        let mut cells = vec![vec![
            "FEATURE".into(),
            "KERNEL".into(),
            "DRYDOCK USES".into(),
        ]];
        cells.extend(rows.map(|(name, _, kernel, uses)| vec![name.to_string(), kernel, uses]));
        print!("{}", table::render(&cells));
        println!(
            "note: the macvlan and ipvlan drivers choose per network; a userspace choice shows as \
             the network's drydock.datapath option in `network inspect`"
        );
    }
    Ok(ExitCode::SUCCESS)
}
