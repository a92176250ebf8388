//! CRC-32 (IEEE 802.3; the polynomial `0x04C11DB7`, reflected `0xEDB88320`; initial
//! value and final XOR `0xFFFFFFFF`): the checksum of zlib's `crc32`, gzip, zip and PNG.
//! The weight file's `data_crc32` (`docs/weight-format.md`) is this checksum of the
//! `content_hash` digits and the data section.
//!
//! Why not the SHA-256 alone: the metadata's `content_hash` sits in the same file as the
//! data it hashes, so whoever can change the data can change the hash: checking it on
//! load guards against accidental damage only, never against an attacker (a page pins
//! the exact file with `integrity`, a SHA-256 it supplies itself). Against accidental
//! damage a CRC-32 does the same job — every error burst up to 32 bits is caught, and any
//! other change escapes with a probability of 2⁻³² — at several times the speed: in wasm,
//! about 1.7 GB/s here against SHA-256's 0.3 GB/s, and in Chromium `crypto.subtle.digest`
//! hashes on the calling thread (`docs/benchmarks/engines-log.md`, "A checksum instead of
//! the SHA-256 on load").
//!
//! The method: "slicing by 16" (16 bytes per step through 16 tables of 256 entries, each
//! table the one before advanced by one zero byte), with the tables built once at run
//! time rather than stored (16 KiB less in the browser's download). [`crc32_bitwise`] is
//! the textbook one-bit-at-a-time definition, the reference the tests hold it to.

use std::sync::OnceLock;

/// The reflected polynomial.
const POLY: u32 = 0xEDB8_8320;

/// The 16 tables: `T[0][b]` is the CRC register after byte `b` from zero, and
/// `T[k][b] = (T[k-1][b] >> 8) ^ T[0][T[k-1][b] & 0xFF]` (`b` followed by `k` zeros).
type Tables = [[u32; 256]; 16];

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Box<Tables>> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut t = Box::new([[0u32; 256]; 16]);
        for b in 0..256u32 {
            let mut c = b;
            for _ in 0..8 {
                c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            }
            t[0][b as usize] = c;
        }
        for k in 1..16 {
            for b in 0..256 {
                let prev = t[k - 1][b];
                t[k][b] = (prev >> 8) ^ t[0][(prev & 0xFF) as usize];
            }
        }
        t
    })
}

/// A running CRC-32: [`Crc32::update`] with consecutive pieces, then
/// [`Crc32::finish`] — the same value as one [`crc32`] over their concatenation.
#[derive(Debug, Clone)]
pub struct Crc32 {
    /// The register (inverted, as the algorithm keeps it between pieces).
    state: u32,
}

impl Default for Crc32 {
    fn default() -> Self {
        Crc32::new()
    }
}

impl Crc32 {
    /// The checksum of no bytes so far.
    pub fn new() -> Crc32 {
        Crc32 { state: !0 }
    }

    /// Adds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        let t = tables();
        let mut c = self.state;
        let mut steps = bytes.chunks_exact(16);
        for s in &mut steps {
            let w0 = c ^ u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
            c = t[15][(w0 & 0xFF) as usize]
                ^ t[14][((w0 >> 8) & 0xFF) as usize]
                ^ t[13][((w0 >> 16) & 0xFF) as usize]
                ^ t[12][(w0 >> 24) as usize]
                ^ t[11][s[4] as usize]
                ^ t[10][s[5] as usize]
                ^ t[9][s[6] as usize]
                ^ t[8][s[7] as usize]
                ^ t[7][s[8] as usize]
                ^ t[6][s[9] as usize]
                ^ t[5][s[10] as usize]
                ^ t[4][s[11] as usize]
                ^ t[3][s[12] as usize]
                ^ t[2][s[13] as usize]
                ^ t[1][s[14] as usize]
                ^ t[0][s[15] as usize];
        }
        for &b in steps.remainder() {
            c = (c >> 8) ^ t[0][((c ^ u32::from(b)) & 0xFF) as usize];
        }
        self.state = c;
    }

    /// The checksum of every byte added.
    pub fn finish(&self) -> u32 {
        !self.state
    }
}

/// CRC-32 of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = Crc32::new();
    c.update(bytes);
    c.finish()
}

/// CRC-32 of `bytes` one bit at a time: the definition, slow, for tests.
pub fn crc32_bitwise(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
        }
    }
    !c
}

/// A checksum as the metadata writes it: 8 lowercase hex digits (most significant
/// first, as `format!("{c:08x}")` writes them).
pub fn to_hex8(c: u32) -> String {
    super::to_hex(&c.to_be_bytes())
}
