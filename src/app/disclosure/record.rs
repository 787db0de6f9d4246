//! An execution record as a pack reads it: the stored JSON is not built into an
//! [`Execution`](crate::domain::execution::Execution) and encoded again. Its top-level fields
//! stay raw JSON, in their stored order; only what packing decides on is parsed (id, status,
//! region, receipt, each artifact's place and digest, each decision's verdict and policy).
//! Written back with [`RawRecord::packed`], a record is the JSON the store holds, with the
//! artifacts outside the region left out and the decisions moved to their own file.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::domain::execution::{ExecutionStatus, ReceiptRef};
use crate::domain::ids::{Digest, ExecutionId};

/// The parts of a stored record a pack needs, each next to its raw JSON.
pub(super) struct RawRecord<'a> {
    fields: Vec<(Cow<'a, str>, Member<'a>)>,
    /// Execution id.
    pub id: ExecutionId,
    /// Status as recorded.
    pub status: ExecutionStatus,
    /// The run's region.
    pub region: String,
    /// Whether it has a receipt.
    pub sealed: bool,
    /// Its artifacts.
    pub artifacts: Vec<RawArtifact<'a>>,
    /// Its policy decisions.
    pub decisions: Vec<RawDecision<'a>>,
}

/// An artifact: where it was written, its digest, and its raw JSON.
pub(super) struct RawArtifact<'a> {
    pub raw: &'a RawValue,
    pub location: String,
    pub region: String,
    pub digest: Digest,
}

/// A decision: its verdict, the policy bundle it pinned, and its raw JSON.
pub(super) struct RawDecision<'a> {
    pub raw: &'a RawValue,
    pub allow: bool,
    pub policy_digest: Digest,
}

#[derive(Deserialize)]
struct ArtifactPlace {
    location: String,
    region: String,
    digest: Digest,
}

#[derive(Deserialize)]
struct Verdict {
    allow: bool,
    policy_digest: Digest,
}

/// A member of the record: raw, or (the lists a pack looks into) a list of raw items.
enum Member<'a> {
    Raw(&'a RawValue),
    List(Vec<&'a RawValue>),
}

/// The members whose items a pack reads: split into items in the same pass over the JSON.
const LISTS: [&str; 2] = ["artifacts", "decisions"];

/// A JSON object's members in document order, values unparsed.
struct Fields<'a>(Vec<(Cow<'a, str>, Member<'a>)>);

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an execution record (a JSON object)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
                let mut fields = Vec::with_capacity(16);
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    let value = if LISTS.contains(&&*key) {
                        Member::List(map.next_value::<Vec<&'de RawValue>>().map_err(|e| {
                            serde::de::Error::custom(format_args!("field {key}: {e}"))
                        })?)
                    } else {
                        Member::Raw(map.next_value::<&'de RawValue>()?)
                    };
                    fields.push((key, value));
                }
                Ok(Fields(fields))
            }
        }
        d.deserialize_map(V)
    }
}

fn field<'a, T: Deserialize<'a>>(name: &str, raw: &'a RawValue) -> Result<T, String> {
    serde_json::from_str(raw.get()).map_err(|e| format!("field {name}: {e}"))
}

impl<'a> RawRecord<'a> {
    /// Reads a record's JSON; errors say which field is wrong.
    pub fn parse(json: &'a [u8]) -> Result<Self, String> {
        let Fields(fields) = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        let (mut id, mut status, mut region) = (None, None, None);
        let mut sealed = false;
        let (mut artifacts, mut decisions) = (Vec::new(), Vec::new());
        for (name, member) in &fields {
            match (&**name, member) {
                ("id", Member::Raw(raw)) => id = Some(field::<ExecutionId>(name, raw)?),
                ("status", Member::Raw(raw)) => status = Some(field::<ExecutionStatus>(name, raw)?),
                ("region", Member::Raw(raw)) => region = Some(field::<String>(name, raw)?),
                ("receipt", Member::Raw(raw)) => {
                    sealed = field::<Option<ReceiptRef>>(name, raw)?.is_some();
                }
                ("artifacts", Member::List(items)) => {
                    for a in items {
                        let p: ArtifactPlace = field(name, a)?;
                        artifacts.push(RawArtifact {
                            raw: a,
                            location: p.location,
                            region: p.region,
                            digest: p.digest,
                        });
                    }
                }
                ("decisions", Member::List(items)) => {
                    for d in items {
                        let v: Verdict = field(name, d)?;
                        decisions.push(RawDecision {
                            raw: d,
                            allow: v.allow,
                            policy_digest: v.policy_digest,
                        });
                    }
                }
                _ => {}
            }
        }
        let missing = |f: &str| format!("field {f} is missing");
        Ok(RawRecord {
            id: id.ok_or_else(|| missing("id"))?,
            status: status.ok_or_else(|| missing("status"))?,
            region: region.ok_or_else(|| missing("region"))?,
            sealed,
            artifacts,
            decisions,
            fields,
        })
    }

    /// The record as packed: `artifacts` holds only those `keep` selects, `decisions` is
    /// empty (they are packed in their own file); every other field as stored.
    pub fn packed<'r>(&'r self, keep: &'r [bool]) -> impl Serialize + 'r {
        Packed { record: self, keep }
    }
}

struct Packed<'r, 'a> {
    record: &'r RawRecord<'a>,
    keep: &'r [bool],
}

impl Serialize for Packed<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.record.fields.len()))?;
        for (name, member) in &self.record.fields {
            match (&**name, member) {
                ("artifacts", _) => {
                    let kept: Vec<&RawValue> = self
                        .record
                        .artifacts
                        .iter()
                        .zip(self.keep)
                        .filter(|(_, keep)| **keep)
                        .map(|(a, _)| a.raw)
                        .collect();
                    map.serialize_entry(name, &kept)?;
                }
                ("decisions", _) => map.serialize_entry(name, &[] as &[(); 0])?,
                (_, Member::Raw(raw)) => map.serialize_entry(name, raw)?,
                (_, Member::List(items)) => map.serialize_entry(name, items)?,
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_written_back_as_stored_but_for_artifacts_and_decisions() {
        let json = br#"{"id":"ex_01h0000000000000000000000a","tenant":"acme","status":"succeeded","region":"eu-west","tasks":[{"id":"t","out":{"k":[1,2.5,"x"]}}],"artifacts":[{"task":"t","name":"a","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1,"media_type":"text/plain","location":"eu-bucket","region":"eu-west"},{"task":"t","name":"b","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1,"media_type":"text/plain","location":"us-bucket","region":"us-east"}],"decisions":[{"allow":false,"policy_digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","input":{"deep":{"a":null}}}],"receipt":{"digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","log_index":7}}"#;
        let r = RawRecord::parse(json).unwrap();
        assert_eq!(r.id.as_str(), "ex_01h0000000000000000000000a");
        assert_eq!(r.status, ExecutionStatus::Succeeded);
        assert_eq!((r.region.as_str(), r.sealed), ("eu-west", true));
        assert_eq!(r.artifacts.len(), 2);
        assert_eq!(r.artifacts[1].location, "us-bucket");
        assert!(!r.decisions[0].allow);
        let out = serde_json::to_string(&r.packed(&[true, false])).unwrap();
        let expected = String::from_utf8(json.to_vec())
            .unwrap()
            .replace(
                r#",{"task":"t","name":"b","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1,"media_type":"text/plain","location":"us-bucket","region":"us-east"}"#,
                "",
            );
        let cut = expected.find(r#""decisions":["#).unwrap();
        let end = expected.find(r#","receipt""#).unwrap();
        let expected = format!("{}\"decisions\":[]{}", &expected[..cut], &expected[end..]);
        assert_eq!(out, expected);
    }

    #[test]
    fn bad_records_say_which_field() {
        for (json, says) in [
            (&br#"[1]"#[..], "a JSON object"),
            (br#"{"status":"succeeded","region":"x"}"#, "field id is missing"),
            (br#"{"id":"nope","status":"succeeded","region":"x"}"#, "field id"),
            (
                br#"{"id":"ex_01h0000000000000000000000a","status":"succeeded","region":"x","artifacts":[{"location":1}]}"#,
                "field artifacts",
            ),
            (br#"{"id":"ex_01h0000000000000000000000a","status":"odd","region":"x"}"#, "field status"),
            (br#"{"id":"ex_01h0000000000000000000000a","decisions":{}}"#, "field decisions"),
        ] {
            let err = RawRecord::parse(json).err().unwrap();
            assert!(err.contains(says), "{err} should say {says}");
        }
    }
}
