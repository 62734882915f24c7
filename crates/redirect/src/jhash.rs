//! The kernel's jhash (include/linux/jhash.h, Bob Jenkins' lookup3) and nft's bucket step
//! (`nft_jhash_eval`: `reciprocal_scale(jhash(key, len, seed), modulus)`), so user space
//! computes the very bucket the kernel's `jhash ip saddr mod N seed S` gives a packet.

/// The kernel's JHASH_INITVAL.
const INITVAL: u32 = 0xdead_beef;

fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

fn fin(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
}

/// Little-endian word of up to 4 bytes (the kernel's `__get_unaligned_cpu32` on x86 and the
/// tail's byte shifts agree on little-endian machines, which is what this models).
fn word(k: &[u8]) -> u32 {
    k.iter()
        .enumerate()
        .fold(0u32, |w, (i, b)| w | (u32::from(*b) << (8 * i)))
}

/// `jhash(key, length, initval)` as the kernel computes it.
pub fn jhash(key: &[u8], initval: u32) -> u32 {
    let len = u32::try_from(key.len()).unwrap_or(u32::MAX);
    let init = INITVAL.wrapping_add(len).wrapping_add(initval);
    let (mut a, mut b, mut c) = (init, init, init);
    let mut k = key;
    while k.len() > 12 {
        a = a.wrapping_add(word(&k[0..4]));
        b = b.wrapping_add(word(&k[4..8]));
        c = c.wrapping_add(word(&k[8..12]));
        mix(&mut a, &mut b, &mut c);
        k = &k[12..];
    }
    if k.is_empty() {
        return c;
    }
    a = a.wrapping_add(word(k.get(0..4.min(k.len())).unwrap_or_default()));
    if k.len() > 4 {
        b = b.wrapping_add(word(k.get(4..8.min(k.len())).unwrap_or_default()));
    }
    if k.len() > 8 {
        c = c.wrapping_add(word(k.get(8..).unwrap_or_default()));
    }
    fin(&mut a, &mut b, &mut c);
    c
}

/// The kernel's `reciprocal_scale`: `val` scaled into `0..ep_ro`.
pub fn reciprocal_scale(val: u32, ep_ro: u32) -> u32 {
    ((u64::from(val) * u64::from(ep_ro)) >> 32) as u32
}

/// The bucket nft's `jhash <key> mod modulus seed seed` gives `key` (offset 0).
pub fn bucket(key: &[u8], seed: u32, modulus: u32) -> u32 {
    reciprocal_scale(jhash(key, seed), modulus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_key_hashes_to_the_initial_value() {
        // lookup3: with no bytes the tail returns c untouched.
        assert_eq!(jhash(&[], 0), 0xdead_beef);
        assert_eq!(jhash(&[], 1), 0xdead_bef0);
    }

    #[test]
    fn buckets_stay_below_the_modulus_and_spread() {
        let mut seen = vec![0u32; 16];
        for i in 0..4096u32 {
            let b = bucket(&i.to_be_bytes(), 7, 16);
            assert!(b < 16);
            if let Some(s) = seen.get_mut(b as usize) {
                *s += 1;
            }
        }
        assert!(seen.iter().all(|n| (150..=370).contains(n)), "{seen:?}");
    }

    #[test]
    fn lookup3_reference_vectors_hold() {
        // Bob Jenkins' lookup3.c driver5: hashlittle("", 0) = deadbeef,
        // hashlittle("Four score and seven years ago", 30, 0) = 17770551.
        assert_eq!(jhash(b"Four score and seven years ago", 0), 0x1777_0551);
        assert_eq!(jhash(b"Four score and seven years ago", 1), 0xcd62_8161);
    }
}
