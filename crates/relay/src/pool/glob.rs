//! A small shell-glob matcher for `check send ... expect "pattern"`, matching the whole input
//! like fnmatch(3) with no flags: `*` any run of bytes, `?` one byte, `[abc]`, `[a-z]`,
//! `[!x]`/`[^x]` classes, and `\` escaping the next byte.

/// Whether `text` as a whole matches the shell glob `pattern`.
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    // Where to resume after the last `*`: (pattern index after it, text index it covers up to).
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let step = match pattern.get(p) {
            Some(b'*') => {
                star = Some((p + 1, t));
                p += 1;
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => match class(pattern, p, text[t]) {
                Some((true, next)) => Some(next),
                Some((false, _)) => None,
                // An unterminated `[` is a literal.
                None => (text[t] == b'[').then_some(p + 1),
            },
            Some(b'\\') if p + 1 < pattern.len() => (pattern[p + 1] == text[t]).then_some(p + 2),
            Some(c) => (*c == text[t]).then_some(p + 1),
            None => None,
        };
        match step {
            Some(next) => {
                p = next;
                t += 1;
            }
            None => match star {
                // Let the last `*` swallow one more byte and retry from there.
                Some((sp, st)) => {
                    star = Some((sp, st + 1));
                    p = sp;
                    t = st + 1;
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|c| *c == b'*'))
}

/// Matches `c` against the class starting at `pattern[start] == b'['`.
/// Returns (matched, index after the closing `]`), or None if the class is unterminated.
fn class(pattern: &[u8], start: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(pattern.get(i), Some(b'!') | Some(b'^'));
    if negate {
        i += 1;
    }
    let mut found = false;
    let mut first = true;
    loop {
        let lo = *pattern.get(i)?;
        if lo == b']' && !first {
            return Some((found != negate, i + 1));
        }
        first = false;
        let (lo, after) = if lo == b'\\' {
            (*pattern.get(i + 1)?, i + 2)
        } else {
            (lo, i + 1)
        };
        if pattern.get(after) == Some(&b'-') && pattern.get(after + 1).is_some_and(|h| *h != b']') {
            let hi = *pattern.get(after + 1)?;
            found |= lo <= c && c <= hi;
            i = after + 2;
        } else {
            found |= lo == c;
            i = after;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn literal_must_match_whole_input() {
        assert!(matches(b"SSH-2.0", b"SSH-2.0"));
        assert!(!matches(b"SSH", b"SSH-2.0"));
        assert!(!matches(b"SSH-2.0x", b"SSH-2.0"));
    }

    #[test]
    fn star_matches_any_run() {
        assert!(matches(b"SSH-*", b"SSH-2.0-OpenSSH\r\n"));
        assert!(matches(b"*OK*", b"+OK ready\r\n"));
        assert!(matches(b"*", b""));
        assert!(matches(b"a*b*c", b"axxbyyc"));
        assert!(!matches(b"a*b*c", b"axxbyy"));
    }

    #[test]
    fn question_mark_matches_one_byte() {
        assert!(matches(b"22?", b"220"));
        assert!(!matches(b"22?", b"22"));
    }

    #[test]
    fn classes_ranges_and_negation() {
        assert!(matches(b"[0-9][0-9][0-9] *", b"220 hello"));
        assert!(!matches(b"[!2]*", b"220"));
        assert!(matches(b"[^3]*", b"220"));
        assert!(matches(b"[]]", b"]"));
        assert!(matches(b"[a-]", b"-"));
    }

    #[test]
    fn escapes_and_unterminated_class_are_literals() {
        assert!(matches(br"\*", b"*"));
        assert!(!matches(br"\*", b"x"));
        assert!(matches(b"[abc", b"[abc"));
    }

    #[test]
    fn binary_bytes_match_too() {
        assert!(matches(b"\x05\x00*", b"\x05\x00\x01\x02"));
    }
}
