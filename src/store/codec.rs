//! Value encoding: JSON, zstd-compressed when it pays, behind a one-byte format tag so the
//! encoding can change without rewriting old records.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;

const RAW_JSON: u8 = 0;
const ZSTD_JSON: u8 = 1;
const RAW_BYTES: u8 = 2;
const ZSTD_BYTES: u8 = 3;
/// Values shorter than this are stored uncompressed.
const COMPRESS_FROM: usize = 512;
const LEVEL: i32 = 1;

/// Encodes a value, compressed when it pays.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    encode_with(value, true)
}

/// Encodes a value; `compress: false` skips compression (for short-lived records).
pub fn encode_with<T: Serialize>(value: &T, compress: bool) -> Result<Vec<u8>, StoreError> {
    let json =
        serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(format!("encoding: {e}")))?;
    if !compress {
        let mut out = Vec::with_capacity(json.len() + 1);
        out.push(RAW_JSON);
        out.extend_from_slice(&json);
        return Ok(out);
    }
    Ok(tagged(json, RAW_JSON, ZSTD_JSON))
}

/// Encodes opaque bytes.
pub fn encode_bytes(bytes: &[u8]) -> Vec<u8> {
    tagged(bytes.to_vec(), RAW_BYTES, ZSTD_BYTES)
}

thread_local! {
    // Creating a zstd context costs more than compressing a record: keep one per thread.
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> = const { std::cell::RefCell::new(None) };
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { std::cell::RefCell::new(None) };
}

fn compress(plain: &[u8]) -> Option<Vec<u8>> {
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            *c = zstd::bulk::Compressor::new(LEVEL).ok();
        }
        c.as_mut()?.compress(plain).ok()
    })
}

fn decompress(z: &[u8], len: usize) -> Result<Vec<u8>, String> {
    DECOMPRESSOR.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = Some(zstd::bulk::Decompressor::new().map_err(|e| e.to_string())?);
        }
        d.as_mut()
            .expect("set above")
            .decompress(z, len)
            .map_err(|e| e.to_string())
    })
}

fn tagged(plain: Vec<u8>, raw: u8, compressed: u8) -> Vec<u8> {
    if plain.len() >= COMPRESS_FROM
        && let Some(z) = compress(&plain)
        && z.len() + 8 < plain.len()
    {
        let mut out = Vec::with_capacity(z.len() + 9);
        out.push(compressed);
        out.extend_from_slice(&(plain.len() as u64).to_le_bytes());
        out.extend_from_slice(&z);
        return out;
    }
    let mut out = Vec::with_capacity(plain.len() + 1);
    out.push(raw);
    out.extend_from_slice(&plain);
    out
}

fn untag(bytes: &[u8], raw: u8, compressed: u8) -> Result<Vec<u8>, StoreError> {
    match bytes.split_first() {
        Some((&t, rest)) if t == raw => Ok(rest.to_vec()),
        Some((&t, rest)) if t == compressed && rest.len() >= 8 => {
            let len = u64::from_le_bytes(rest[..8].try_into().expect("8 bytes")) as usize;
            if len > 1 << 30 {
                return Err(StoreError::Corrupt(format!("record claims {len} bytes")));
            }
            let out = decompress(&rest[8..], len)
                .map_err(|e| StoreError::Corrupt(format!("decompressing a record: {e}")))?;
            if out.len() != len {
                return Err(StoreError::Corrupt(
                    "a record is shorter than its header says".into(),
                ));
            }
            Ok(out)
        }
        Some((&t, _)) => Err(StoreError::Corrupt(format!("unknown record format {t}"))),
        None => Err(StoreError::Corrupt("empty record".into())),
    }
}

/// Decodes a value.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    let json = untag(bytes, RAW_JSON, ZSTD_JSON)?;
    serde_json::from_slice(&json)
        .map_err(|e| StoreError::Corrupt(format!("decoding a record: {e}")))
}

/// The JSON text of an encoded value, decompressed but not parsed.
pub fn json_bytes(bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    untag(bytes, RAW_JSON, ZSTD_JSON)
}

/// Decodes opaque bytes.
pub fn decode_bytes(bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    untag(bytes, RAW_BYTES, ZSTD_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_small_and_large_values() {
        let small = serde_json::json!({"a": 1});
        assert_eq!(encode(&small).unwrap()[0], RAW_JSON);
        assert_eq!(
            decode::<serde_json::Value>(&encode(&small).unwrap()).unwrap(),
            small
        );
        let large = serde_json::json!({"text": "abc".repeat(1000)});
        let enc = encode(&large).unwrap();
        assert_eq!(enc[0], ZSTD_JSON);
        assert!(enc.len() < 200);
        assert_eq!(decode::<serde_json::Value>(&enc).unwrap(), large);
        let bytes = vec![7u8; 4096];
        assert_eq!(decode_bytes(&encode_bytes(&bytes)).unwrap(), bytes);
    }

    #[test]
    fn corrupt_records_are_errors_not_panics() {
        for bad in [
            &[][..],
            &[9, 1, 2][..],
            &[ZSTD_JSON, 1][..],
            &[ZSTD_JSON, 255, 255, 255, 255, 255, 255, 255, 255, 1][..],
        ] {
            assert!(decode::<serde_json::Value>(bad).is_err());
        }
        assert!(decode_bytes(&[RAW_JSON, b'{']).is_err());
    }
}
