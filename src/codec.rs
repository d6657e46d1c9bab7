//! The one binary encoding of the Raft path: log entries and the records beside them in redb,
//! Raft snapshots and operator snapshot files.
//!
//! Everything is CBOR (`ciborium`), which is self-describing: the model's serde attributes
//! (rename, `skip_serializing_if`, flatten, untagged) work as they do for the JSON API, and a field
//! added later is read back as its default from what an older build wrote.
//!
//! ```text
//!   record (a redb value)  = VERSION byte ─ one CBOR item
//!   stream (a file)        = MAGIC (8 bytes) ─ kind byte ─ VERSION byte ─ zstd( CBOR item, CBOR item, … )
//! ```
//!
//! A record's first byte tells its format: [`VERSION`] for CBOR, or the first byte of a JSON
//! document (`{`, `[`, `"`, `n`, a digit, `-`), which is how builds before this encoding wrote the
//! log, read back as JSON so their data dirs open. A stream's header names what the file is
//! ([`StreamKind`]) and its version; anything else is refused with an error naming what was found.
//! A stream is written and read one item at a time: the whole state is never one document in
//! memory.

use std::io::{BufReader, BufWriter, Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The version of the encoding this build writes and reads.
pub const VERSION: u8 = 1;

/// The first bytes of every stream: never the start of JSON or text.
pub const MAGIC: [u8; 8] = *b"\x89caravan";

/// The zstd level snapshots are compressed at: fast, and most of the gain of higher levels on
/// state that repeats field names and values.
const ZSTD_LEVEL: i32 = 3;

/// What a stream holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum StreamKind {
    /// A Raft snapshot: its metadata, then the state, table by table.
    RaftSnapshot = b'R',
    /// An operator snapshot file (`operator snapshot save`): its header, then the state.
    OperatorSnapshot = b'S',
}

impl StreamKind {
    fn byte(self) -> u8 {
        self as u8
    }

    fn describe(byte: u8) -> &'static str {
        match byte {
            b'R' => "a Raft snapshot",
            b'S' => "an operator snapshot",
            _ => "an unknown kind of caravan stream",
        }
    }
}

/// An error of encoding or decoding.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("encoding: {0}")]
    Encode(String),
    #[error("decoding: {0}")]
    Decode(String),
    #[error("an empty record")]
    Empty,
    #[error("format version {found} (this build reads version {VERSION})")]
    UnknownVersion { found: u8 },
    #[error("not a caravan file (it does not start with caravan's magic bytes)")]
    NotCaravan,
    #[error("{found}, where {expected} was expected", found = StreamKind::describe(*found), expected = StreamKind::describe(expected.byte()))]
    WrongKind { found: u8, expected: StreamKind },
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

fn decode_error<E: std::fmt::Debug>(error: ciborium::de::Error<E>) -> CodecError {
    match error {
        ciborium::de::Error::Io(error) => CodecError::Decode(format!("reading: {error:?}")),
        ciborium::de::Error::Syntax(offset) => {
            CodecError::Decode(format!("malformed CBOR at byte {offset}"))
        }
        ciborium::de::Error::Semantic(offset, message) => match offset {
            Some(offset) => CodecError::Decode(format!("{message} (at byte {offset})")),
            None => CodecError::Decode(message),
        },
        ciborium::de::Error::RecursionLimitExceeded => {
            CodecError::Decode("nested too deeply".to_owned())
        }
    }
}

fn encode_error<E: std::fmt::Debug>(error: ciborium::ser::Error<E>) -> CodecError {
    match error {
        ciborium::ser::Error::Io(error) => CodecError::Encode(format!("writing: {error:?}")),
        ciborium::ser::Error::Value(message) => CodecError::Encode(message),
    }
}

/// `value` as a record: the version byte, then its CBOR.
pub fn encode_record<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut bytes = vec![VERSION];
    ciborium::into_writer(value, &mut bytes).map_err(encode_error)?;
    Ok(bytes)
}

/// A record [`encode_record`] wrote, or a JSON document an earlier build wrote.
pub fn decode_record<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match bytes.first() {
        None => Err(CodecError::Empty),
        Some(&VERSION) => ciborium::from_reader(&bytes[1..]).map_err(decode_error),
        Some(b'{' | b'[' | b'"' | b'n' | b't' | b'f' | b'-' | b'0'..=b'9') => {
            serde_json::from_slice(bytes)
                .map_err(|error| CodecError::Decode(format!("a JSON record: {error}")))
        }
        Some(&found) => Err(CodecError::UnknownVersion { found }),
    }
}

/// Writes a stream: the header, then one CBOR item per [`StreamWriter::item`], compressed.
pub struct StreamWriter<W: Write> {
    encoder: zstd::stream::write::Encoder<'static, BufWriter<W>>,
}

impl<W: Write> StreamWriter<W> {
    /// Starts a stream of `kind` on `writer`.
    pub fn new(writer: W, kind: StreamKind) -> Result<Self, CodecError> {
        let mut writer = BufWriter::with_capacity(256 * 1024, writer);
        writer.write_all(&MAGIC)?;
        writer.write_all(&[kind.byte(), VERSION])?;
        let encoder = zstd::stream::write::Encoder::new(writer, ZSTD_LEVEL)?;
        Ok(Self { encoder })
    }

    /// Appends one item.
    pub fn item<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CodecError> {
        ciborium::into_writer(value, &mut self.encoder).map_err(encode_error)
    }

    /// Ends the stream and returns the writer, everything flushed to it.
    pub fn finish(self) -> Result<W, CodecError> {
        let writer = self.encoder.finish()?;
        writer
            .into_inner()
            .map_err(|error| CodecError::Io(error.into_error()))
    }
}

/// Reads a stream [`StreamWriter`] wrote, one item at a time.
pub struct StreamReader<R: Read> {
    decoder: BufReader<zstd::stream::read::Decoder<'static, BufReader<R>>>,
    /// ciborium's buffer for strings and bytes, reused across items: the longest read in place.
    scratch: Vec<u8>,
}

impl<R: Read> StreamReader<R> {
    /// Checks the header of a stream of `kind` on `reader`.
    pub fn new(reader: R, kind: StreamKind) -> Result<Self, CodecError> {
        let mut reader = BufReader::with_capacity(256 * 1024, reader);
        let mut header = [0u8; MAGIC.len() + 2];
        read_header(&mut reader, &mut header)?;
        let (magic, rest) = header.split_at(MAGIC.len());
        if magic != MAGIC {
            return Err(CodecError::NotCaravan);
        }
        if rest[0] != kind.byte() {
            return Err(CodecError::WrongKind {
                found: rest[0],
                expected: kind,
            });
        }
        if rest[1] != VERSION {
            return Err(CodecError::UnknownVersion { found: rest[1] });
        }
        let decoder = zstd::stream::read::Decoder::with_buffer(reader)?;
        Ok(Self {
            decoder: BufReader::with_capacity(256 * 1024, decoder),
            scratch: vec![0; 64 * 1024],
        })
    }

    /// The next item.
    pub fn item<T: DeserializeOwned>(&mut self) -> Result<T, CodecError> {
        ciborium::de::from_reader_with_buffer(&mut self.decoder, &mut self.scratch)
            .map_err(decode_error)
    }
}

/// Fills `header` from the start of `reader`; a shorter file is not a caravan stream.
fn read_header(reader: &mut impl Read, header: &mut [u8]) -> Result<(), CodecError> {
    match reader.read_exact(header) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(CodecError::NotCaravan)
        }
        Err(error) => Err(CodecError::Io(error)),
    }
}

/// Whether `bytes` start like a caravan stream (as opposed to an earlier build's JSON).
pub fn is_stream(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Before {
        name: String,
        count: u64,
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct After {
        name: String,
        count: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        added: Option<String>,
    }

    #[test]
    fn a_record_reads_back_and_a_field_added_later_defaults() -> anyhow::Result<()> {
        let bytes = encode_record(&Before {
            name: "web".to_owned(),
            count: 3,
        })?;
        assert_eq!(bytes[0], VERSION);
        let after: After = decode_record(&bytes)?;
        assert_eq!(
            after,
            After {
                name: "web".to_owned(),
                count: 3,
                added: None
            }
        );
        Ok(())
    }

    #[test]
    fn a_json_record_of_an_earlier_build_is_read() -> anyhow::Result<()> {
        let after: After = decode_record(br#"{"Name":"web","Count":3}"#)?;
        assert_eq!(after.count, 3);
        let none: Option<u64> = decode_record(b"null")?;
        assert_eq!(none, None);
        Ok(())
    }

    #[test]
    fn an_unknown_record_version_is_refused_by_name() -> anyhow::Result<()> {
        let mut bytes = encode_record(&1u64)?;
        bytes[0] = 7;
        let error = decode_record::<u64>(&bytes).expect_err("refused");
        assert_eq!(
            error.to_string(),
            "format version 7 (this build reads version 1)"
        );
        assert!(matches!(decode_record::<u64>(&[]), Err(CodecError::Empty)));
        Ok(())
    }

    #[test]
    fn a_stream_reads_back_item_by_item() -> anyhow::Result<()> {
        let mut writer = StreamWriter::new(Vec::new(), StreamKind::RaftSnapshot)?;
        for count in 0..1000u64 {
            writer.item(&Before {
                name: format!("job-{count}"),
                count,
            })?;
        }
        writer.item("a string longer than the scratch buffer: ")?;
        writer.item(&"x".repeat(100_000))?;
        let bytes = writer.finish()?;
        assert!(is_stream(&bytes));

        let mut reader = StreamReader::new(bytes.as_slice(), StreamKind::RaftSnapshot)?;
        for count in 0..1000u64 {
            let item: After = reader.item()?;
            assert_eq!(item.count, count);
            assert_eq!(item.name, format!("job-{count}"));
        }
        let _: String = reader.item()?;
        assert_eq!(reader.item::<String>()?.len(), 100_000);
        assert!(reader.item::<String>().is_err(), "the stream has ended");
        Ok(())
    }

    #[test]
    fn a_stream_of_another_kind_version_or_format_is_refused_by_name() -> anyhow::Result<()> {
        let bytes = StreamWriter::new(Vec::new(), StreamKind::RaftSnapshot)?.finish()?;
        let error = StreamReader::new(bytes.as_slice(), StreamKind::OperatorSnapshot)
            .err()
            .expect("refused");
        assert_eq!(
            error.to_string(),
            "a Raft snapshot, where an operator snapshot was expected"
        );
        let mut future = bytes.clone();
        future[MAGIC.len() + 1] = 2;
        let error = StreamReader::new(future.as_slice(), StreamKind::RaftSnapshot)
            .err()
            .expect("refused");
        assert_eq!(
            error.to_string(),
            "format version 2 (this build reads version 1)"
        );
        for other in [&b"{\"Meta\":1}"[..], b"", b"\x89car"] {
            assert!(matches!(
                StreamReader::new(other, StreamKind::RaftSnapshot),
                Err(CodecError::NotCaravan)
            ));
        }
        Ok(())
    }
}
