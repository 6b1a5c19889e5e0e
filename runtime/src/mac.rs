//! MAC addresses as text: `02:42:ac:11:00:02`, as Docker shows and takes them.

/// `xx:xx:xx:xx:xx:xx`, lower case.
pub(crate) fn text(mac: [u8; 6]) -> String {
    mac.map(|b| format!("{b:02x}")).join(":")
}

/// Six hexadecimal bytes separated by `:`; `None` for anything else.
pub(crate) fn parse(text: &str) -> Option<[u8; 6]> {
    let bytes: Vec<u8> = (text.split(':'))
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_read_back_as_written() {
        let mac = [0x02, 0x42, 0xac, 0x11, 0x00, 0x02];
        assert_eq!(text(mac), "02:42:ac:11:00:02");
        assert_eq!(parse("02:42:AC:11:00:02"), Some(mac));
        assert_eq!(parse("02:42"), None);
        assert_eq!(parse("02:42:ac:11:00:zz"), None);
    }
}
