//! Streaming pcapng output over pcap-file 2.

use std::borrow::Cow;
use std::io::{self, Write};

use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::{DataLink, PcapError};

use super::{Direction, Packet, socket::SNAPLEN};

/// EPB flags, direction bits (pcapng spec, "epb_flags"): 01 inbound, 10 outbound.
const FLAG_INBOUND: u32 = 0b01;
const FLAG_OUTBOUND: u32 = 0b10;

/// if_tsresol = 9: timestamps in nanoseconds, which is what pcap-file 2 writes in every EPB.
const TSRESOL_NANOS: u8 = 9;

/// A pcapng file being written: one interface block per captured interface, then packets.
pub struct PcapNgSink<W: Write> {
    writer: PcapNgWriter<W>,
    interfaces: u32,
}

impl<W: Write> std::fmt::Debug for PcapNgSink<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapNgSink")
            .field("interfaces", &self.interfaces)
            .finish_non_exhaustive()
    }
}

impl<W: Write> PcapNgSink<W> {
    /// Starts a file on `writer` (writes the section header).
    pub fn new(writer: W) -> io::Result<Self> {
        let writer = PcapNgWriter::new(writer).map_err(into_io)?;
        Ok(Self {
            writer,
            interfaces: 0,
        })
    }

    /// Declares an Ethernet interface named `label` (e.g. "h1/eth0") and returns its id for
    /// [`PcapNgSink::write`].
    pub fn add_interface(&mut self, label: &str) -> io::Result<u32> {
        let block = InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: SNAPLEN as u32,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Borrowed(label)),
                InterfaceDescriptionOption::IfTsResol(TSRESOL_NANOS),
            ],
        };
        self.writer.write_pcapng_block(block).map_err(into_io)?;
        let id = self.interfaces;
        self.interfaces += 1;
        Ok(id)
    }

    /// Writes `packet` as captured on `interface`, with its direction in the packet flags.
    pub fn write(&mut self, interface: u32, packet: &Packet) -> io::Result<()> {
        let flags = match packet.direction {
            Direction::In => FLAG_INBOUND,
            Direction::Out => FLAG_OUTBOUND,
        };
        let block = EnhancedPacketBlock {
            interface_id: interface,
            timestamp: packet.timestamp,
            original_len: packet.original_len.max(packet.data.len() as u32),
            data: Cow::Borrowed(&packet.data),
            options: vec![EnhancedPacketOption::Flags(flags)],
        };
        self.writer.write_pcapng_block(block).map_err(into_io)?;
        Ok(())
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.writer.get_mut().flush()?;
        Ok(self.writer.into_inner())
    }
}

/// Writes several captures, labelled, into one pcapng file: one interface per capture (in the
/// given order), packets merged in timestamp order. Returns the flushed writer.
pub fn write_pcapng<W, L, P>(writer: W, captures: &[(L, P)]) -> io::Result<W>
where
    W: Write,
    L: AsRef<str>,
    P: AsRef<[Packet]>,
{
    let mut sink = PcapNgSink::new(writer)?;
    let mut ids = std::collections::HashMap::new();
    for (label, _) in captures {
        let label = label.as_ref();
        if !ids.contains_key(label) {
            ids.insert(label, sink.add_interface(label)?);
        }
    }
    for (label, packet) in super::merge(captures) {
        sink.write(ids[label], packet)?;
    }
    sink.finish()
}

fn into_io(error: PcapError) -> io::Error {
    match error {
        PcapError::IoError(e) => e,
        other => io::Error::other(other),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use pcap_file::pcapng::{Block, PcapNgReader};

    use super::*;

    fn packet(millis: u64, direction: Direction, byte: u8) -> Packet {
        Packet {
            timestamp: Duration::from_millis(1_700_000_000_000 + millis),
            direction,
            original_len: 60,
            data: vec![byte; 60],
        }
    }

    fn read_back(bytes: &[u8]) -> Vec<Block<'static>> {
        let mut reader = PcapNgReader::new(bytes).unwrap();
        let mut blocks = Vec::new();
        while let Some(block) = reader.next_block() {
            blocks.push(block.unwrap().into_owned());
        }
        blocks
    }

    #[test]
    fn interfaces_carry_name_and_nanosecond_resolution() {
        let mut sink = PcapNgSink::new(Vec::new()).unwrap();
        assert_eq!(sink.add_interface("h1/eth0").unwrap(), 0);
        assert_eq!(sink.add_interface("h2/eth0").unwrap(), 1);
        let bytes = sink.finish().unwrap();
        let blocks = read_back(&bytes);
        assert_eq!(blocks.len(), 2);
        let Block::InterfaceDescription(idb) = &blocks[1] else {
            panic!("not an IDB: {:?}", blocks[1]);
        };
        assert_eq!(idb.linktype, DataLink::ETHERNET);
        assert_eq!(
            idb.options,
            vec![
                InterfaceDescriptionOption::IfName("h2/eth0".into()),
                InterfaceDescriptionOption::IfTsResol(9),
            ]
        );
    }

    #[test]
    fn packets_carry_direction_flags_and_nanoseconds() {
        let mut sink = PcapNgSink::new(Vec::new()).unwrap();
        let id = sink.add_interface("h1/eth0").unwrap();
        let mut out = packet(1, Direction::Out, 0xaa);
        out.timestamp += Duration::from_nanos(123);
        sink.write(id, &out).unwrap();
        sink.write(id, &packet(2, Direction::In, 0xbb)).unwrap();
        let blocks = read_back(&sink.finish().unwrap());
        let epbs: Vec<_> = blocks
            .iter()
            .filter_map(|b| match b {
                Block::EnhancedPacket(epb) => Some(epb),
                _ => None,
            })
            .collect();
        assert_eq!(epbs.len(), 2);
        assert_eq!(epbs[0].timestamp, out.timestamp);
        assert_eq!(epbs[0].data.as_ref(), &out.data[..]);
        assert_eq!(epbs[0].original_len, 60);
        assert_eq!(epbs[0].options, vec![EnhancedPacketOption::Flags(2)]);
        assert_eq!(epbs[1].options, vec![EnhancedPacketOption::Flags(1)]);
    }

    #[test]
    fn writing_to_an_unknown_interface_fails() {
        let mut sink = PcapNgSink::new(Vec::new()).unwrap();
        assert!(sink.write(0, &packet(0, Direction::In, 0)).is_err());
    }

    #[test]
    fn merged_file_interleaves_captures_by_time() {
        let h1 = vec![packet(1, Direction::Out, 1), packet(5, Direction::Out, 3)];
        let h2 = vec![packet(3, Direction::In, 2), packet(5, Direction::In, 4)];
        let bytes = write_pcapng(Vec::new(), &[("h1/eth0", &h1), ("h2/eth0", &h2)]).unwrap();
        let order: Vec<(u32, u8)> = read_back(&bytes)
            .iter()
            .filter_map(|b| match b {
                Block::EnhancedPacket(epb) => Some((epb.interface_id, epb.data[0])),
                _ => None,
            })
            .collect();
        // Equal timestamps keep the order of the captures.
        assert_eq!(order, vec![(0, 1), (1, 2), (0, 3), (1, 4)]);
    }
}
