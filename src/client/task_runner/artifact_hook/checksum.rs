//! `options { checksum = "type:value" }`: the fetched file's digest (md5, sha1, sha256, sha512,
//! as go-getter), checked before the file is moved into place or unpacked.

use std::io::Read;

use sha2::Digest;

use super::ArtifactError;

/// An expected digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub kind: &'static str,
    pub expected: Vec<u8>,
}

impl Checksum {
    /// Parses `type:hex`; without a type the hex length picks it, as go-getter does.
    pub fn parse(text: &str) -> Result<Checksum, ArtifactError> {
        let bad = |why: String| ArtifactError::Source(format!("invalid checksum {text:?}: {why}"));
        let (kind, value) = match text.split_once(':') {
            Some((kind, value)) => (kind.to_ascii_lowercase(), value),
            None => {
                let kind = match text.len() {
                    32 => "md5",
                    40 => "sha1",
                    64 => "sha256",
                    128 => "sha512",
                    _ => return Err(bad("no type and an unknown length".to_owned())),
                };
                (kind.to_owned(), text)
            }
        };
        let (kind, len) = match kind.as_str() {
            "md5" => ("md5", 16),
            "sha1" => ("sha1", 20),
            "sha256" => ("sha256", 32),
            "sha512" => ("sha512", 64),
            other => {
                return Err(bad(format!(
                    "unsupported checksum type {other:?} (md5, sha1, sha256, sha512)"
                )));
            }
        };
        let expected = hex::decode(value).map_err(|err| bad(err.to_string()))?;
        if expected.len() != len {
            return Err(bad(format!("a {kind} digest is {len} bytes")));
        }
        Ok(Checksum { kind, expected })
    }

    /// Reads `reader` to its end and compares its digest; the error names both digests.
    pub fn verify(&self, reader: &mut dyn Read, what: &str) -> Result<(), ArtifactError> {
        let actual = match self.kind {
            "md5" => digest::<md5::Md5>(reader)?,
            "sha1" => digest::<sha1::Sha1>(reader)?,
            "sha256" => digest::<sha2::Sha256>(reader)?,
            _ => digest::<sha2::Sha512>(reader)?,
        };
        if actual != self.expected {
            return Err(ArtifactError::Checksum {
                file: what.to_owned(),
                kind: self.kind,
                expected: hex::encode(&self.expected),
                actual: hex::encode(&actual),
            });
        }
        Ok(())
    }
}

fn digest<D: Digest>(reader: &mut dyn Read) -> std::io::Result<Vec<u8>> {
    let mut hasher = D::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = reader.read(&mut buffer)?;
        if read == 0 {
            return Ok(hasher.finalize().to_vec());
        }
        hasher.update(&buffer[..read]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_is_checked_and_a_mismatch_names_both_digests() -> Result<(), ArtifactError> {
        let data = b"hello\n";
        for (text, kind) in [
            ("md5:b1946ac92492d2347c6235b4d2611184", "md5"),
            ("sha1:f572d396fae9206628714fb2ce00f72e94f2258f", "sha1"),
            (
                "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
                "sha256",
            ),
            (
                "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
                "sha256",
            ),
        ] {
            let checksum = Checksum::parse(text)?;
            assert_eq!(checksum.kind, kind);
            checksum.verify(&mut &data[..], "f")?;
            let err = checksum
                .verify(&mut &b"other"[..], "f")
                .expect_err("mismatch");
            let message = err.to_string();
            assert!(message.contains("checksums did not match"), "{message}");
            assert!(
                message.contains(&hex::encode(&checksum.expected)),
                "{message}"
            );
        }
        let sha512 = hex::encode(sha2::Sha512::digest(data));
        Checksum::parse(&format!("sha512:{sha512}"))?.verify(&mut &data[..], "f")?;
        for bad in ["crc32:00", "sha256:zz", "md5:abcd", "abc"] {
            assert!(Checksum::parse(bad).is_err(), "{bad}");
        }
        Ok(())
    }
}
