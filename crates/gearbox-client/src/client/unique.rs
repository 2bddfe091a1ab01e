//! Generated unique ids and the hash that maps a unique id to a server.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// A fresh 128-bit random unique id as 32 lowercase hex digits (within gearmand's 64 bytes).
///
/// splitmix64 over a per-process counter whose start is seeded from std's randomly keyed
/// hasher, the clock and the process id: unpredictable enough to never collide in practice,
/// which is all a unique id needs (it is not a secret).
pub(crate) fn generate() -> String {
    format!("{:016x}{:016x}", next(), next())
}

fn next() -> u64 {
    static STATE: OnceLock<AtomicU64> = OnceLock::new();
    let state = STATE.get_or_init(|| AtomicU64::new(seed()));
    mix(state
        .fetch_add(GOLDEN, Ordering::Relaxed)
        .wrapping_add(GOLDEN))
}

fn seed() -> u64 {
    let mut h = RandomState::new().build_hasher();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.write_u128(now);
    h.write_u32(std::process::id());
    h.finish()
}

/// splitmix64's output function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Which of `n` servers a unique id belongs to: FNV-1a (64-bit) modulo `n`. Stable across
/// processes and versions, so every client with the same server list agrees.
pub(crate) fn server_index(unique: &[u8], n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in unique {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % n as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_hex_and_distinct() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| generate()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids
            .iter()
            .all(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())));
    }

    #[test]
    fn hashing_is_stable_and_spreads() {
        // FNV-1a test vector: "a" -> 0xaf63dc4c8601ec8c.
        assert_eq!(server_index(b"a", 1 << 20), 0xaf63dc4c8601ec8c % (1 << 20));
        assert_eq!(server_index(b"anything", 1), 0);
        let mut seen = [0u32; 3];
        for i in 0..300 {
            seen[server_index(format!("job-{i}").as_bytes(), 3)] += 1;
        }
        assert!(seen.iter().all(|&c| c > 50), "{seen:?}");
    }
}
