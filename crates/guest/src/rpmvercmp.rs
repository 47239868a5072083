//! Version comparison as rpm does it (`rpmvercmp`), so kernels order the way
//! the RHEL family's GRUB (blscfg) and `rpm -q --last` order them:
//! `5.14.0-362.8.1.el9_3` is newer than `5.14.0-362.el9`.
//!
//! Written from rpm's documented algorithm (no crate implements it with
//! tilde and caret): both strings are cut into runs of digits and runs of
//! letters, everything else separates. `~` sorts before anything (even the
//! end), `^` after the end but before anything else. Digit runs compare as
//! numbers and beat letter runs; letter runs compare as bytes. When one
//! string runs out, the longer one is newer.

use std::cmp::Ordering;

/// `s` without its first `n` bytes (empty when it is shorter).
fn skip(s: &[u8], n: usize) -> &[u8] {
    s.get(n..).unwrap_or_default()
}

/// Compares two version strings as rpm's `rpmvercmp` does.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (mut one, mut two) = (a.as_bytes(), b.as_bytes());
    let sep = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    loop {
        while one.first().is_some_and(|&c| sep(c)) {
            one = skip(one, 1);
        }
        while two.first().is_some_and(|&c| sep(c)) {
            two = skip(two, 1);
        }
        let (c1, c2) = (one.first().copied(), two.first().copied());
        // Tilde: a pre-release, older than anything, the end included.
        if c1 == Some(b'~') || c2 == Some(b'~') {
            if c1 != Some(b'~') {
                return Ordering::Greater;
            }
            if c2 != Some(b'~') {
                return Ordering::Less;
            }
            one = skip(one, 1);
            two = skip(two, 1);
            continue;
        }
        // Caret: a post-release, newer than the end, older than anything else.
        if c1 == Some(b'^') || c2 == Some(b'^') {
            if c1.is_none() {
                return Ordering::Less;
            }
            if c2.is_none() {
                return Ordering::Greater;
            }
            if c1 != Some(b'^') {
                return Ordering::Greater;
            }
            if c2 != Some(b'^') {
                return Ordering::Less;
            }
            one = skip(one, 1);
            two = skip(two, 1);
            continue;
        }
        let (Some(c1), Some(_)) = (c1, c2) else {
            break;
        };
        let numeric = c1.is_ascii_digit();
        let run = |s: &[u8]| {
            s.iter()
                .take_while(|c| {
                    if numeric {
                        c.is_ascii_digit()
                    } else {
                        c.is_ascii_alphabetic()
                    }
                })
                .count()
        };
        // A run never reaches past its string.
        let (seg1, rest1) = one.split_at_checked(run(one)).unwrap_or((one, &[]));
        let (seg2, rest2) = two.split_at_checked(run(two)).unwrap_or((two, &[]));
        (one, two) = (rest1, rest2);
        // Different kinds of segment: a number is newer than letters.
        if seg2.is_empty() {
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let ord = if numeric {
            let strip = |s: &'_ [u8]| -> usize { s.iter().take_while(|&&c| c == b'0').count() };
            let (s1, s2) = (skip(seg1, strip(seg1)), skip(seg2, strip(seg2)));
            s1.len().cmp(&s2.len()).then_with(|| s1.cmp(s2))
        } else {
            seg1.cmp(seg2)
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    match (one.is_empty(), two.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, _) => Ordering::Greater,
    }
}

#[cfg(test)]
mod tests {
    use super::rpmvercmp;
    use std::cmp::Ordering::{self, *};

    /// rpm's own test table (tests/rpmvercmp.at): (a, b, rpmvercmp(a, b)).
    const CASES: &[(&str, &str, Ordering)] = &[
        ("1.0", "1.0", Equal),
        ("1.0", "2.0", Less),
        ("2.0", "1.0", Greater),
        ("2.0.1", "2.0.1", Equal),
        ("2.0", "2.0.1", Less),
        ("2.0.1", "2.0", Greater),
        ("2.0.1a", "2.0.1a", Equal),
        ("2.0.1a", "2.0.1", Greater),
        ("2.0.1", "2.0.1a", Less),
        ("5.5p1", "5.5p1", Equal),
        ("5.5p1", "5.5p2", Less),
        ("5.5p2", "5.5p1", Greater),
        ("5.5p10", "5.5p10", Equal),
        ("5.5p1", "5.5p10", Less),
        ("5.5p10", "5.5p1", Greater),
        ("10xyz", "10.1xyz", Less),
        ("10.1xyz", "10xyz", Greater),
        ("xyz10", "xyz10", Equal),
        ("xyz10", "xyz10.1", Less),
        ("xyz10.1", "xyz10", Greater),
        ("xyz.4", "xyz.4", Equal),
        ("xyz.4", "8", Less),
        ("8", "xyz.4", Greater),
        ("xyz.4", "2", Less),
        ("2", "xyz.4", Greater),
        ("5.5p2", "5.6p1", Less),
        ("5.6p1", "5.5p2", Greater),
        ("5.6p1", "6.5p1", Less),
        ("6.5p1", "5.6p1", Greater),
        ("6.0.rc1", "6.0", Greater),
        ("6.0", "6.0.rc1", Less),
        ("10b2", "10a1", Greater),
        ("10a2", "10b2", Less),
        ("1.0aa", "1.0aa", Equal),
        ("1.0a", "1.0aa", Less),
        ("1.0aa", "1.0a", Greater),
        ("10.0001", "10.0001", Equal),
        ("10.0001", "10.1", Equal),
        ("10.1", "10.0001", Equal),
        ("10.0001", "10.0039", Less),
        ("10.0039", "10.0001", Greater),
        ("4.999.9", "5.0", Less),
        ("5.0", "4.999.9", Greater),
        ("20101121", "20101121", Equal),
        ("20101121", "20101122", Less),
        ("20101122", "20101121", Greater),
        ("2_0", "2_0", Equal),
        ("2.0", "2_0", Equal),
        ("2_0", "2.0", Equal),
        ("a", "a", Equal),
        ("a+", "a+", Equal),
        ("a+", "a_", Equal),
        ("a_", "a+", Equal),
        ("+a", "+a", Equal),
        ("+a", "_a", Equal),
        ("_a", "+a", Equal),
        ("+_", "+_", Equal),
        ("_+", "+_", Equal),
        ("_+", "_+", Equal),
        ("+", "_", Equal),
        ("_", "+", Equal),
        ("1.0~rc1", "1.0~rc1", Equal),
        ("1.0~rc1", "1.0", Less),
        ("1.0", "1.0~rc1", Greater),
        ("1.0~rc1", "1.0~rc2", Less),
        ("1.0~rc2", "1.0~rc1", Greater),
        ("1.0~rc1~git123", "1.0~rc1~git123", Equal),
        ("1.0~rc1~git123", "1.0~rc1", Less),
        ("1.0~rc1", "1.0~rc1~git123", Greater),
        ("1.0^", "1.0^", Equal),
        ("1.0^", "1.0", Greater),
        ("1.0", "1.0^", Less),
        ("1.0^git1", "1.0^git1", Equal),
        ("1.0^git1", "1.0", Greater),
        ("1.0", "1.0^git1", Less),
        ("1.0^git1", "1.0^git2", Less),
        ("1.0^git2", "1.0^git1", Greater),
        ("1.0^git1", "1.01", Less),
        ("1.01", "1.0^git1", Greater),
        ("1.0^20160101", "1.0^20160101", Equal),
        ("1.0^20160101", "1.0.1", Less),
        ("1.0.1", "1.0^20160101", Greater),
        ("1.0^20160101^git1", "1.0^20160101^git1", Equal),
        ("1.0^20160102", "1.0^20160101^git1", Greater),
        ("1.0^20160101^git1", "1.0^20160102", Less),
        ("1.0~rc1^git1", "1.0~rc1^git1", Equal),
        ("1.0~rc1^git1", "1.0~rc1", Greater),
        ("1.0~rc1", "1.0~rc1^git1", Less),
        ("1.0^git1~pre", "1.0^git1~pre", Equal),
        ("1.0^git1", "1.0^git1~pre", Greater),
        ("1.0^git1~pre", "1.0^git1", Less),
    ];

    #[test]
    fn rpm_test_table() {
        for (a, b, want) in CASES {
            assert_eq!(rpmvercmp(a, b), *want, "rpmvercmp({a:?}, {b:?})");
        }
    }

    /// Antisymmetric and reflexive on random strings, including non-ASCII bytes.
    #[test]
    fn antisymmetric_on_garbage() {
        let alphabet: Vec<char> = "0123456789abcXYZ.-_~^+é ".chars().collect();
        let mut x = 0x1234_5678_9abc_def1u64;
        let mut next = || {
            let len = usize::try_from(x % 12).unwrap_or(0);
            (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    alphabet[usize::try_from(x).unwrap_or(0) % alphabet.len()]
                })
                .collect::<String>()
        };
        for _ in 0..20_000 {
            let (a, b) = (next(), next());
            assert_eq!(
                rpmvercmp(&a, &b),
                rpmvercmp(&b, &a).reverse(),
                "{a:?} {b:?}"
            );
            assert_eq!(rpmvercmp(&a, &a), Equal);
        }
    }

    #[test]
    fn rhel_kernels() {
        assert_eq!(
            rpmvercmp("5.14.0-362.8.1.el9_3.x86_64", "5.14.0-362.el9.x86_64"),
            Greater
        );
        assert_eq!(rpmvercmp("6.1.0-18-amd64", "6.1.0-9-amd64"), Greater);
        assert_eq!(rpmvercmp("3.10.0-1160.el7", "3.10.0-957.el7"), Greater);
    }
}
