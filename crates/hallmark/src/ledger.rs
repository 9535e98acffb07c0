//! The accountability ledger: an append-only, hash-chained log of every stamp, each record
//! signed with the C2PA signing key. It is the local form of C2PA soft-binding resolution:
//! a stripped image's watermark ID finds who stamped it, when, and with which model.
//!
//! Format: one JSON object per line. `hash` is the SHA-256 of the record's canonical JSON
//! without `hash` and `sig`; `prev` is the previous record's `hash` (64 zeros for the first);
//! `sig` is an Ed25519 signature over `hash`. Editing a record breaks its hash, deleting or
//! reordering breaks the next `prev` (and `seq`), forging needs the signing key.

use base64::Engine as _;
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use hallmark_c2pa::RecordKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Payload;

/// Checks one record on its own: its hash matches its content and its signature verifies
/// under the public key it names. What a registry checks before storing a record sent on
/// its own (its place in a chain is checked with [`verify_chain`]).
///
/// # Errors
/// Why the record does not stand up, in words.
pub fn check_record(r: &Record) -> Result<(), String> {
    if digest(r.seq, &r.prev, &r.entry, &r.public_key) != r.hash {
        return Err("content does not match its hash (the record was edited)".into());
    }
    let pk: [u8; 32] = hex::decode(&r.public_key)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or("malformed public key")?;
    let key = VerifyingKey::from_bytes(&pk).map_err(|_| "malformed public key")?;
    let sig = base64::engine::general_purpose::STANDARD
        .decode(&r.sig)
        .ok()
        .and_then(|s| Signature::from_slice(&s).ok())
        .ok_or("malformed signature")?;
    key.verify(r.hash.as_bytes(), &sig)
        .map_err(|_| "signature does not verify".to_string())
}

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a stamp contributes to the ledger.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Entry {
    /// RFC 3339 time of the stamp.
    pub time: String,
    /// SHA-256 of the input file, hex.
    pub input_sha256: String,
    /// SHA-256 of the output file, hex.
    pub output_sha256: String,
    /// The watermark ID.
    pub watermark_id: Payload,
    /// The C2PA manifest label.
    pub manifest_id: String,
    /// The generating model, if recorded.
    pub model: Option<String>,
    /// The watermark key's public ID.
    pub key_id: String,
    /// Who signed (the signing certificate's subject).
    pub signer: String,
}

/// One ledger record.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Record {
    /// 0-based position in the ledger.
    pub seq: u64,
    /// Hash of the previous record.
    pub prev: String,
    /// The stamp's facts.
    #[serde(flatten)]
    pub entry: Entry,
    /// The signer's Ed25519 public key, hex.
    pub public_key: String,
    /// SHA-256 of the canonical record, hex.
    pub hash: String,
    /// Ed25519 signature over `hash`, base64.
    pub sig: String,
}

#[derive(Serialize)]
struct Canonical<'a> {
    seq: u64,
    prev: &'a str,
    #[serde(flatten)]
    entry: &'a Entry,
    public_key: &'a str,
}

fn digest(seq: u64, prev: &str, entry: &Entry, public_key: &str) -> String {
    let c = Canonical {
        seq,
        prev,
        entry,
        public_key,
    };
    // serde_json writes struct fields in declaration order: the encoding is canonical.
    let bytes = serde_json::to_vec(&c).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

/// Makes the record that follows `last` (or the first record).
pub fn next_record(last: Option<&Record>, entry: Entry, cred: &RecordKey) -> Record {
    let seq = last.map_or(0, |r| r.seq + 1);
    let prev = last.map_or_else(|| GENESIS.to_string(), |r| r.hash.clone());
    let public_key = hex::encode(cred.public_key());
    let hash = digest(seq, &prev, &entry, &public_key);
    let sig = base64::engine::general_purpose::STANDARD.encode(cred.sign(hash.as_bytes()));
    Record {
        seq,
        prev,
        entry,
        public_key,
        hash,
        sig,
    }
}

/// Where and why a ledger is broken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Broken {
    /// 1-based line number of the first bad record.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// Parses and checks a whole ledger. `expected_key` pins the signer's public key; without
/// it, the first record's key is used for all (and the caller should say so).
///
/// # Errors
/// The first broken record: unparsable line, wrong sequence, broken chain, edited content,
/// bad signature, or a different signer.
pub fn verify_chain(text: &str, expected_key: Option<[u8; 32]>) -> Result<Vec<Record>, Broken> {
    verify_continuation(None, 1, text, expected_key)
}

/// Checks that `text` (lines numbered from `first_line`) continues a chain whose last
/// verified record is `last` (`None`: `text` starts the ledger). This is how a writer that
/// already verified a ledger checks what other processes appended since, without re-reading
/// the whole file. With `last` given, its signer is the expected key unless one is pinned.
///
/// # Errors
/// As [`verify_chain`], with line numbers counted from `first_line`.
pub fn verify_continuation(
    last: Option<&Record>,
    first_line: usize,
    text: &str,
    expected_key: Option<[u8; 32]>,
) -> Result<Vec<Record>, Broken> {
    let mut out: Vec<Record> = vec![];
    let pinned = expected_key.or_else(|| {
        last.and_then(|r| hex::decode(&r.public_key).ok())
            .and_then(|v| v.try_into().ok())
    });
    let mut key: Option<VerifyingKey> = pinned.and_then(|k| VerifyingKey::from_bytes(&k).ok());
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let line_no = i + first_line;
        let bad = |reason: String| Broken {
            line: line_no,
            reason,
        };
        let r: Record =
            serde_json::from_str(line).map_err(|e| bad(format!("not a ledger record: {e}")))?;
        let prev_rec = out.last().or(last);
        let want_seq = prev_rec.map_or(0, |p| p.seq + 1);
        if r.seq != want_seq {
            return Err(bad(format!(
                "sequence {} where {want_seq} was expected (a record was deleted, inserted or reordered)",
                r.seq
            )));
        }
        let want_prev = prev_rec.map_or(GENESIS, |p| p.hash.as_str());
        if r.prev != want_prev {
            return Err(bad(
                "does not chain to the previous record (deleted, inserted or reordered)".into(),
            ));
        }
        if digest(r.seq, &r.prev, &r.entry, &r.public_key) != r.hash {
            return Err(bad(
                "content does not match its hash (the record was edited)".into(),
            ));
        }
        let pk: [u8; 32] = hex::decode(&r.public_key)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| bad("malformed public key".into()))?;
        let this_key =
            VerifyingKey::from_bytes(&pk).map_err(|_| bad("malformed public key".into()))?;
        let k = *key.get_or_insert(this_key);
        if k != this_key {
            return Err(bad("signed by a different key than the ledger's".into()));
        }
        let sig = base64::engine::general_purpose::STANDARD
            .decode(&r.sig)
            .ok()
            .and_then(|s| Signature::from_slice(&s).ok())
            .ok_or_else(|| bad("malformed signature".into()))?;
        k.verify(r.hash.as_bytes(), &sig)
            .map_err(|_| bad("signature does not verify".into()))?;
        out.push(r);
    }
    Ok(out)
}

/// The schema name of a [`Checkpoint`].
pub const CHECKPOINT_SCHEMA: &str = "hallmark.ledger-checkpoint/1";

/// A signed statement of a ledger's length and head: "this ledger held `records` records,
/// the last with hash `head`". The chain alone cannot show that records were cut off the
/// end (what remains is still a valid chain); a checkpoint published elsewhere (a
/// transparency log, a web page, a partner's inbox) can: a ledger shorter than a checkpoint
/// it once had, or one whose record at that position hashes otherwise, has lost or
/// rewritten records.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Checkpoint {
    /// Always [`CHECKPOINT_SCHEMA`].
    pub schema: String,
    /// How many records the ledger held.
    pub records: u64,
    /// The hash of the last of them ([`GENESIS`] for an empty ledger).
    pub head: String,
    /// RFC 3339 time the checkpoint was made.
    pub time: String,
    /// The signer's Ed25519 public key, hex (the ledger's).
    pub public_key: String,
    /// Ed25519 signature over [`Checkpoint::message`], base64.
    pub sig: String,
}

impl Checkpoint {
    /// The bytes the signature covers.
    pub fn message(&self) -> Vec<u8> {
        format!(
            "{CHECKPOINT_SCHEMA}\n{}\n{}\n{}\n{}",
            self.records, self.head, self.time, self.public_key
        )
        .into_bytes()
    }
}

/// Makes a signed checkpoint of a verified ledger (`records` as [`verify_chain`] returns
/// them).
pub fn checkpoint(records: &[Record], cred: &RecordKey) -> Checkpoint {
    let mut cp = Checkpoint {
        schema: CHECKPOINT_SCHEMA.to_string(),
        records: records.len() as u64,
        head: records
            .last()
            .map_or_else(|| GENESIS.to_string(), |r| r.hash.clone()),
        time: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        public_key: hex::encode(cred.public_key()),
        sig: String::new(),
    };
    cp.sig = base64::engine::general_purpose::STANDARD.encode(cred.sign(&cp.message()));
    cp
}

/// Checks a checkpoint on its own: its schema, and its signature under the key it names
/// (which must be `expected_key` when one is given). What a registry checks before storing
/// a checkpoint.
///
/// # Errors
/// Why not, in words.
pub fn check_checkpoint_signature(
    cp: &Checkpoint,
    expected_key: Option<[u8; 32]>,
) -> Result<(), String> {
    if cp.schema != CHECKPOINT_SCHEMA {
        return Err(format!("not a ledger checkpoint ({:?})", cp.schema));
    }
    let pk: [u8; 32] = hex::decode(&cp.public_key)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or("the checkpoint's public key is malformed")?;
    if expected_key.is_some_and(|k| k != pk) {
        return Err("the checkpoint is signed by another key than the given one".into());
    }
    let key =
        VerifyingKey::from_bytes(&pk).map_err(|_| "the checkpoint's public key is malformed")?;
    let sig = base64::engine::general_purpose::STANDARD
        .decode(&cp.sig)
        .ok()
        .and_then(|s| Signature::from_slice(&s).ok())
        .ok_or("the checkpoint's signature is malformed")?;
    key.verify(&cp.message(), &sig)
        .map_err(|_| "the checkpoint's signature does not verify (edited or forged)".to_string())
}

/// Checks a checkpoint's signature (with `expected_key` pinned, else its own key) and that
/// `records` (a verified ledger) still holds everything it counted.
///
/// # Errors
/// Why not, in words: a bad signature or another signer, fewer records than the checkpoint
/// counted (records cut off the end), or a different record at its head (rewritten).
pub fn check_checkpoint(
    records: &[Record],
    cp: &Checkpoint,
    expected_key: Option<[u8; 32]>,
) -> Result<(), String> {
    check_checkpoint_signature(cp, expected_key)?;
    if let Some(first) = records.first()
        && first.public_key != cp.public_key
    {
        return Err("the checkpoint was signed by another key than the ledger's".into());
    }
    let n = usize::try_from(cp.records).unwrap_or(usize::MAX);
    if records.len() < n {
        return Err(format!(
            "the ledger holds {} records but the checkpoint of {} counted {}: records were cut off the end",
            records.len(),
            cp.time,
            cp.records
        ));
    }
    let head = n
        .checked_sub(1)
        .map_or(GENESIS, |i| records[i].hash.as_str());
    if head != cp.head {
        return Err(format!(
            "record {} is not the one the checkpoint of {} signed: the ledger was rewritten",
            n.saturating_sub(1),
            cp.time
        ));
    }
    Ok(())
}

/// The records that carry watermark ID `id`.
pub fn lookup(records: &[Record], id: Payload) -> Vec<&Record> {
    records
        .iter()
        .filter(|r| r.entry.watermark_id == id)
        .collect()
}

/// The ledger entry for a stamp made now.
pub fn entry_for(st: &crate::Stamped, s: &crate::Stamper) -> Entry {
    Entry {
        time: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        input_sha256: st.input_sha256.clone(),
        output_sha256: st.output_sha256.clone(),
        watermark_id: st.payload,
        manifest_id: st.manifest_id.clone(),
        model: s.model.as_ref().map(|m| match &m.version {
            Some(v) => format!("{} {v}", m.name),
            None => m.name.clone(),
        }),
        key_id: st.key_id.to_string(),
        signer: s.signer().subject(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred() -> RecordKey {
        RecordKey::from_pkcs8_pem(&RecordKey::generate_pem().expect("pem")).expect("key")
    }

    fn entry(i: u64) -> Entry {
        Entry {
            time: format!("2026-11-29T10:00:0{i}Z"),
            input_sha256: "aa".repeat(32),
            output_sha256: "bb".repeat(32),
            watermark_id: Payload(i),
            manifest_id: format!("urn:c2pa:{i}"),
            model: Some("m".into()),
            key_id: "0011223344556677".into(),
            signer: "CN=x".into(),
        }
    }

    fn ledger(c: &RecordKey, n: u64) -> Vec<String> {
        let mut last: Option<Record> = None;
        let mut lines = vec![];
        for i in 0..n {
            let r = next_record(last.as_ref(), entry(i), c);
            lines.push(serde_json::to_string(&r).expect("json"));
            last = Some(r);
        }
        lines
    }

    #[test]
    fn intact_ledger_verifies_and_looks_up() {
        let c = cred();
        let text = ledger(&c, 4).join("\n");
        let recs = verify_chain(&text, Some(c.public_key())).expect("valid");
        assert_eq!(recs.len(), 4);
        assert_eq!(lookup(&recs, Payload(2))[0].entry.manifest_id, "urn:c2pa:2");
    }

    #[test]
    fn edits_deletions_reorderings_and_other_keys_are_caught() {
        let c = cred();
        let lines = ledger(&c, 4);
        let edited: Vec<String> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                if i == 2 {
                    l.replace("urn:c2pa:2", "urn:c2pa:9")
                } else {
                    l.clone()
                }
            })
            .collect();
        assert_eq!(verify_chain(&edited.join("\n"), None).unwrap_err().line, 3);
        let mut deleted = lines.clone();
        deleted.remove(1);
        assert_eq!(verify_chain(&deleted.join("\n"), None).unwrap_err().line, 2);
        let mut swapped = lines.clone();
        swapped.swap(1, 2);
        assert_eq!(verify_chain(&swapped.join("\n"), None).unwrap_err().line, 2);
        let other = cred();
        assert_eq!(
            verify_chain(&lines.join("\n"), Some(other.public_key()))
                .unwrap_err()
                .line,
            1
        );
        // A continuation is checked against the record it follows.
        let recs = verify_chain(&lines[..2].join("\n"), None).expect("valid");
        let tail = lines[2..].join("\n");
        assert_eq!(
            verify_continuation(recs.last(), 3, &tail, None)
                .expect("continues")
                .len(),
            2
        );
        assert_eq!(
            verify_continuation(recs.first(), 2, &tail, None)
                .unwrap_err()
                .line,
            2
        );
        assert_eq!(
            verify_continuation(recs.last(), 3, &ledger(&other, 4)[2..].join("\n"), None)
                .unwrap_err()
                .line,
            3
        );
        // Checkpoints: a cut-off or rewritten ledger fails the one it had.
        let full = verify_chain(&lines.join("\n"), None).expect("valid");
        let cp = checkpoint(&full, &c);
        assert_eq!(check_checkpoint(&full, &cp, Some(c.public_key())), Ok(()));
        let mut longer = lines.clone();
        longer.push(serde_json::to_string(&next_record(full.last(), entry(9), &c)).expect("json"));
        let longer = verify_chain(&longer.join("\n"), None).expect("valid");
        assert_eq!(check_checkpoint(&longer, &cp, None), Ok(()));
        let cut = verify_chain(&lines[..3].join("\n"), None).expect("still a valid chain");
        assert!(
            check_checkpoint(&cut, &cp, None)
                .unwrap_err()
                .contains("cut off")
        );
        let rewritten: Vec<Record> = {
            let mut last: Option<Record> = None;
            (0..4)
                .map(|i| {
                    let r = next_record(last.as_ref(), entry(i + 20), &c);
                    last = Some(r.clone());
                    r
                })
                .collect()
        };
        assert!(
            check_checkpoint(&rewritten, &cp, None)
                .unwrap_err()
                .contains("rewritten")
        );
        let mut edited = cp.clone();
        edited.records = 2;
        assert!(
            check_checkpoint(&full, &edited, None)
                .unwrap_err()
                .contains("signature")
        );
        assert!(check_checkpoint(&full, &cp, Some(other.public_key())).is_err());
        let mut forged = lines.clone();
        let foreign = ledger(&other, 4);
        forged[3] = foreign[3].clone();
        assert!(verify_chain(&forged.join("\n"), None).is_err());
    }
}
