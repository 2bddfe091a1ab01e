//! Job handles of the form `<prefix>:<n>`, as gearmand and gearbox hand them out (e.g.
//! `H:host:42`): [`format_handle`] writes one, [`parse_handle`] reads the number back.
//!
//! Only the canonical form counts: `n` is a decimal number from 1 up, with no sign and no
//! leading zeros, so a handle [`parse_handle`] accepts is exactly the one [`format_handle`]
//! makes of its number. Any other handle is opaque (a client only ever echoes handles back).

use bytes::Bytes;

use crate::request::fmt_u64;

/// The handle `<prefix>:<number>`, in an exact-size buffer. Numbers start at 1: the handle
/// of 0 is not canonical and [`parse_handle`] refuses it.
pub fn format_handle(prefix: &[u8], number: u64) -> Bytes {
    // Not `format!`: it costs more than the rest of the handle, made for every JOB_CREATED
    // and JOB_ASSIGN.
    let mut buf = [0u8; 20];
    let digits = fmt_u64(&mut buf, number);
    let mut v = Vec::with_capacity(prefix.len() + 1 + digits.len());
    v.extend_from_slice(prefix);
    v.push(b':');
    v.extend_from_slice(digits);
    Bytes::from(v)
}

/// The number in `handle` if it is `<prefix>:<n>` in the canonical form (see the module
/// docs); `None` for any other handle, including a number past `u64::MAX`.
pub fn parse_handle(handle: &[u8], prefix: &[u8]) -> Option<u64> {
    let digits = handle.strip_prefix(prefix)?.strip_prefix(b":")?;
    let canonical = matches!(digits.first(), Some(b'1'..=b'9'))
        && digits.len() <= 20
        && digits.iter().all(u8::is_ascii_digit);
    if !canonical {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn handles_round_trip_in_canonical_form_only() {
        let h = format_handle(b"H:x", 42);
        assert_eq!((&h[..], h.len()), (&b"H:x:42"[..], 6));
        for n in [0, 1, 9, 10, 99, 100, 12_345, u64::MAX / 7, u64::MAX] {
            assert_eq!(format_handle(b"H:x", n), format!("H:x:{n}").as_bytes());
        }
        assert_eq!(parse_handle(&h, b"H:x"), Some(42));
        let max = format_handle(b"H:x", u64::MAX);
        assert_eq!(parse_handle(&max, b"H:x"), Some(u64::MAX));
        assert_eq!(
            parse_handle(b":7", b""),
            Some(7),
            "an empty prefix is a prefix"
        );
        for bad in [
            &b"H:x:042"[..],
            b"H:x:+42",
            b"H:x:-42",
            b"H:x:0",
            b"H:x:",
            b"H:x42",
            b"H:y:42",
            b"H:x:4 2",
            b"H:x:42 ",
            b"H:x:18446744073709551616",
            b"H:x:99999999999999999999",
            b"H:x:100000000000000000000",
            b"H:x",
            b"",
        ] {
            assert_eq!(parse_handle(bad, b"H:x"), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn a_formatted_handle_parses_back(
            prefix in proptest::collection::vec(any::<u8>(), 0..16),
            n in 1..=u64::MAX,
        ) {
            let h = format_handle(&prefix, n);
            prop_assert_eq!(parse_handle(&h, &prefix), Some(n));
        }

        #[test]
        fn a_parsed_handle_is_the_one_its_number_formats_to(
            prefix in "[A-Za-z:]{0,6}",
            rest in "(:[1-9][0-9]{0,20})|(:?[0-9+ -]{0,22})",
        ) {
            let handle = format!("{prefix}{rest}");
            if let Some(n) = parse_handle(handle.as_bytes(), prefix.as_bytes()) {
                prop_assert_eq!(format_handle(prefix.as_bytes(), n), handle.as_bytes());
            }
        }
    }
}
