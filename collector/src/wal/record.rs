//! Record framing inside a segment file.
//!
//! ```text
//! segment  := MAGIC record*
//! MAGIC    := b"HOPWAL01"                      (8 bytes)
//! record   := len:u32le crc:u32le seq:u64le payload[len]
//! crc      := crc32(seq:u64le ++ payload)      (CRC-32/ISO-HDLC, as crc32fast computes it)
//! ```
//!
//! A record is valid when its whole frame is present, `len <= MAX_PAYLOAD` and the
//! checksum matches. Anything else ends the valid prefix of the segment.

use std::io::{self, IoSlice, Read, Write};

/// The first bytes of every segment file.
pub const MAGIC: &[u8; 8] = b"HOPWAL01";
/// Bytes before the payload.
pub const HEADER_LEN: usize = 16;
/// Largest payload accepted; a larger length field is read as corruption.
pub const MAX_PAYLOAD: usize = 256 * 1024 * 1024;

/// The header of a record frame; the payload follows it.
pub fn header(seq: u64, payload: &[u8]) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    header[4..8].copy_from_slice(&checksum(seq, payload).to_le_bytes());
    header[8..].copy_from_slice(&seq.to_le_bytes());
    header
}

/// Encodes one record frame (tests build damaged segments from frames; appends write
/// the header and payload with [`write_frame`]).
#[cfg(test)]
pub fn encode(seq: u64, payload: &[u8]) -> Vec<u8> {
    [&header(seq, payload)[..], payload].concat()
}

/// Writes a frame, header and payload, without copying the payload: one `writev(2)`
/// unless the kernel takes less.
pub fn write_frame(out: &mut impl Write, header: &[u8; HEADER_LEN], payload: &[u8]) -> io::Result<()> {
    let mut slices = [IoSlice::new(header), IoSlice::new(payload)];
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match out.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn checksum(seq: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&seq.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// What reading one record found.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A valid record.
    Record {
        /// Its sequence number.
        seq: u64,
        /// Its payload.
        payload: Vec<u8>,
    },
    /// Clean end of data: no byte of a further record.
    End,
    /// A partial frame: the data ends inside a record (a torn write, or a write still in
    /// progress when read live).
    Torn,
    /// A complete frame whose checksum does not match; the input is positioned after it.
    BadChecksum {
        /// Bytes of the whole frame.
        frame_len: u64,
    },
    /// A frame that cannot be delimited (its length field is impossible).
    Corrupt(&'static str),
}

/// Reads the next record. I/O errors other than a short read are returned as errors.
pub fn read_record(input: &mut impl Read) -> io::Result<Decoded> {
    read_record_into(input, Vec::new())
}

/// [`read_record`] with the payload read into `payload` (emptied first; a buffer to
/// reuse), which a [`Decoded::Record`] hands back.
pub fn read_record_into(input: &mut impl Read, mut payload: Vec<u8>) -> io::Result<Decoded> {
    payload.clear();
    let mut header = [0u8; HEADER_LEN];
    match read_full(input, &mut header)? {
        0 => return Ok(Decoded::End),
        n if n < HEADER_LEN => return Ok(Decoded::Torn),
        _ => {}
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let mut seq_bytes = [0u8; 8];
    seq_bytes.copy_from_slice(&header[8..16]);
    let seq = u64::from_le_bytes(seq_bytes);
    if len > MAX_PAYLOAD {
        return Ok(Decoded::Corrupt("record length is out of range"));
    }
    // Read without zeroing the buffer first (a record is ~270 KiB at 500 spans);
    // `read_to_end` stops at the length or where the input ends, retrying interruptions.
    payload.reserve(len);
    if input.by_ref().take(len as u64).read_to_end(&mut payload)? < len {
        return Ok(Decoded::Torn);
    }
    if checksum(seq, &payload) != crc {
        return Ok(Decoded::BadChecksum {
            frame_len: (HEADER_LEN + len) as u64,
        });
    }
    Ok(Decoded::Record { seq, payload })
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let frame = encode(7, b"hello");
        assert_eq!(
            read_record(&mut &frame[..]).unwrap(),
            Decoded::Record {
                seq: 7,
                payload: b"hello".to_vec()
            }
        );
        assert_eq!(read_record(&mut &frame[..frame.len() - 1]).unwrap(), Decoded::Torn);
        assert_eq!(read_record(&mut &frame[..3]).unwrap(), Decoded::Torn);
        assert_eq!(read_record(&mut &[][..]).unwrap(), Decoded::End);
        let mut flipped = frame.clone();
        flipped[HEADER_LEN + 1] ^= 0x40;
        assert_eq!(
            read_record(&mut &flipped[..]).unwrap(),
            Decoded::BadChecksum {
                frame_len: frame.len() as u64
            }
        );
        let mut huge = frame.clone();
        huge[3] = 0xff;
        assert_eq!(
            read_record(&mut &huge[..]).unwrap(),
            Decoded::Corrupt("record length is out of range")
        );
    }

    #[test]
    fn a_reused_buffer_holds_exactly_the_record() {
        let frame = encode(8, b"abc");
        let used = b"left over from an earlier, longer record".to_vec();
        assert_eq!(
            read_record_into(&mut &frame[..], used).unwrap(),
            Decoded::Record {
                seq: 8,
                payload: b"abc".to_vec()
            }
        );
    }
}
