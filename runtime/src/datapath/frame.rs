//! What the datapaths read of an Ethernet frame (after its virtio-net header): addresses and
//! the 802.1Q tag they insert. Pure; no I/O.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::VNET_HDR;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
/// virtio-net header flag: `csum_start`/`csum_offset` are valid.
const NEEDS_CSUM: u8 = 1;

/// The destination MAC address of `frame`, if it has an Ethernet header.
pub(crate) fn destination(frame: &[u8]) -> Option<[u8; 6]> {
    frame.get(..6)?.try_into().ok()
}

/// Whether `mac` is a group (multicast or broadcast) address.
pub(crate) fn is_group(mac: [u8; 6]) -> bool {
    mac[0] & 1 == 1
}

/// The IP address a frame is for: an IPv4 or IPv6 packet's destination, an ARP packet's target
/// protocol address. `None` for anything else or a truncated frame.
pub(crate) fn target_ip(frame: &[u8]) -> Option<IpAddr> {
    let ethertype = u16::from_be_bytes(frame.get(12..14)?.try_into().ok()?);
    let l3 = frame.get(14..)?;
    match ethertype {
        ETHERTYPE_IPV4 if l3.len() >= 20 => {
            let octets: [u8; 4] = l3[16..20].try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(octets)))
        }
        ETHERTYPE_IPV6 if l3.len() >= 40 => {
            let octets: [u8; 16] = l3[24..40].try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(octets)))
        }
        // Ethernet/IPv4 ARP: the target protocol address ends the 28-byte packet.
        ETHERTYPE_ARP if l3.len() >= 28 => {
            let octets: [u8; 4] = l3[24..28].try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(octets)))
        }
        _ => None,
    }
}

/// The IP packet of a frame (what follows the Ethernet header), if it carries IPv4 or IPv6.
pub(crate) fn ip_packet(frame: &[u8]) -> Option<&[u8]> {
    let ethertype = u16::from_be_bytes(frame.get(12..14)?.try_into().ok()?);
    matches!(ethertype, ETHERTYPE_IPV4 | ETHERTYPE_IPV6).then(|| &frame[14..])
}

/// Tags a frame read at `buf[4..4 + len]` (virtio-net header first) with VLAN `vid`, in place:
/// the header and the MAC addresses move 4 bytes forward, the tag goes after them, and the
/// header's offsets (checksum start, header length) grow by 4. Returns the tagged length, which
/// starts at `buf[0]`; `None` when the read is too short to be a frame.
pub(crate) fn push_vlan_tag(buf: &mut [u8], len: usize, vid: u16) -> Option<usize> {
    if len < VNET_HDR + 14 || buf.len() < len + 4 {
        return None;
    }
    buf.copy_within(4..4 + VNET_HDR + 12, 0);
    let tag = VNET_HDR + 12;
    buf[tag..tag + 2].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
    buf[tag + 2..tag + 4].copy_from_slice(&(vid & 0x0fff).to_be_bytes());
    let header = &mut buf[..VNET_HDR];
    // struct virtio_net_hdr: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
    // (little-endian, as TAP and AF_PACKET use on this host).
    if header[1] != 0 {
        grow_le16(&mut header[2..4], 4);
    }
    if header[0] & NEEDS_CSUM != 0 {
        grow_le16(&mut header[6..8], 4);
    }
    Some(len + 4)
}

fn grow_le16(field: &mut [u8], by: u16) {
    let value = u16::from_le_bytes([field[0], field[1]]).wrapping_add(by);
    field.copy_from_slice(&value.to_le_bytes());
}

/// Whether a virtio-net header asks for nothing: no segmentation, no checksum to finish.
pub(crate) fn is_plain(header: &[u8]) -> bool {
    header.len() >= VNET_HDR && header[0] & NEEDS_CSUM == 0 && header[1] == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4_frame(dst: [u8; 4]) -> Vec<u8> {
        let mut frame = vec![0xff; 6];
        frame.extend([2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        let mut ip = vec![0u8; 20];
        ip[0] = 0x45;
        ip[16..20].copy_from_slice(&dst);
        frame.extend(ip);
        frame
    }

    #[test]
    fn finds_the_ip_a_frame_is_for() {
        let frame = ipv4_frame([10, 0, 0, 7]);
        assert_eq!(target_ip(&frame), Some("10.0.0.7".parse().unwrap()));
        assert_eq!(ip_packet(&frame).unwrap()[0], 0x45);
        assert_eq!(target_ip(&frame[..20]), None);
        assert!(is_group(destination(&frame).unwrap()));
    }

    #[test]
    fn arp_is_for_its_target_protocol_address() {
        let mut frame = vec![0xff; 6];
        frame.extend([2, 0, 0, 0, 0, 1, 0x08, 0x06]);
        let mut arp = vec![0u8; 28];
        arp[24..28].copy_from_slice(&[192, 168, 1, 9]);
        frame.extend(arp);
        assert_eq!(target_ip(&frame), Some("192.168.1.9".parse().unwrap()));
        assert_eq!(ip_packet(&frame), None);
    }

    #[test]
    fn a_tag_goes_after_the_addresses_and_shifts_the_offsets() {
        let mut header = [0u8; VNET_HDR];
        header[0] = NEEDS_CSUM;
        header[1] = 1; // TCPv4 segmentation
        header[2..4].copy_from_slice(&54u16.to_le_bytes());
        header[6..8].copy_from_slice(&34u16.to_le_bytes());
        let frame = ipv4_frame([10, 0, 0, 7]);
        let mut buf = vec![0u8; 4];
        buf.extend(header);
        buf.extend(&frame);
        let len = push_vlan_tag(&mut buf, VNET_HDR + frame.len(), 10).unwrap();
        assert_eq!(len, VNET_HDR + frame.len() + 4);
        let tagged = &buf[VNET_HDR..len];
        assert_eq!(&tagged[..12], &frame[..12]);
        assert_eq!(&tagged[12..16], &[0x81, 0x00, 0x00, 0x0a]);
        assert_eq!(&tagged[16..], &frame[12..]);
        assert_eq!(u16::from_le_bytes([buf[2], buf[3]]), 58);
        assert_eq!(u16::from_le_bytes([buf[6], buf[7]]), 38);
        assert!(!is_plain(&buf));
    }
}
