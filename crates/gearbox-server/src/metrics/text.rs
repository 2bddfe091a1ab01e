//! Writing Prometheus' text exposition format (version 0.0.4) into one growing buffer:
//! numbers through `itoa`, label values escaped in place, no allocation per line.

use super::histogram::Buckets;

/// Metric kinds, as the `# TYPE` line names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A value that goes up and down.
    Gauge,
    /// A total that only goes up (the name ends in `_total`).
    Counter,
    /// Cumulative buckets, `_sum` and `_count`.
    Histogram,
}

/// A buffer the exposition text is appended to.
pub struct Text<'a> {
    out: &'a mut Vec<u8>,
    num: itoa::Buffer,
}

impl<'a> Text<'a> {
    /// Appends to `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Text<'a> {
        Text {
            out,
            num: itoa::Buffer::new(),
        }
    }

    /// Appends `s` unchanged.
    pub fn raw(&mut self, s: &str) {
        self.out.extend_from_slice(s.as_bytes());
    }

    /// Appends `bytes` unchanged (text written by another [`Text`]).
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Bytes in the buffer.
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// Appends a number.
    pub fn num(&mut self, n: u64) {
        self.out.extend_from_slice(self.num.format(n).as_bytes());
    }

    /// Appends `n / 10^decimals` as a decimal fraction (`1234`, 3 → `1.234`).
    pub fn scaled(&mut self, n: u64, decimals: u32) {
        if decimals == 0 {
            return self.num(n);
        }
        let unit = 10u64.pow(decimals);
        self.num(n / unit);
        self.out.push(b'.');
        let frac = self.num.format(n % unit);
        for _ in frac.len()..decimals as usize {
            self.out.push(b'0');
        }
        self.out.extend_from_slice(frac.as_bytes());
    }

    /// The `# HELP` and `# TYPE` lines of a metric.
    pub fn header(&mut self, name: &str, help: &str, kind: Kind) {
        let kind = match kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Histogram => "histogram",
        };
        for part in [
            "# HELP ",
            name,
            " ",
            help,
            "\n# TYPE ",
            name,
            " ",
            kind,
            "\n",
        ] {
            self.raw(part);
        }
    }

    /// A label value: lossy UTF-8, with `\`, `"` and newlines escaped.
    pub fn label_value(&mut self, value: &[u8]) {
        let text = String::from_utf8_lossy(value);
        if !text.contains(['\\', '"', '\n']) {
            return self.raw(&text);
        }
        for c in text.chars() {
            match c {
                '\\' => self.raw("\\\\"),
                '"' => self.raw("\\\""),
                '\n' => self.raw("\\n"),
                c => {
                    let mut b = [0u8; 4];
                    self.raw(c.encode_utf8(&mut b));
                }
            }
        }
    }

    /// One sample line: `name{labels} value`; `labels` is written by the closure (empty for
    /// none), without braces.
    pub fn sample(&mut self, name: &str, labels: impl Fn(&mut Self), value: u64) {
        self.series(name, "", &labels, None);
        self.num(value);
        self.out.push(b'\n');
    }

    /// `name` + `suffix`, then `{labels}` (`labels` and then `extra` label, if any), then a
    /// space. No braces when there are no labels at all.
    fn series(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &dyn Fn(&mut Self),
        extra: Option<(&str, &str)>,
    ) {
        self.raw(name);
        self.raw(suffix);
        let start = self.out.len();
        self.out.push(b'{');
        labels(self);
        let empty = self.out.len() == start + 1;
        if let Some((k, v)) = extra {
            if !empty {
                self.out.push(b',');
            }
            for part in [k, "=\"", v, "\""] {
                self.raw(part);
            }
        } else if empty {
            self.out.truncate(start);
            self.out.push(b' ');
            return;
        }
        self.raw("} ");
    }

    /// One histogram's lines: a cumulative `_bucket` per bound of `buckets` and `+Inf`, then
    /// `_sum` (in the buckets' unit) and `_count`. `counts` holds the observations per bucket
    /// (not cumulative), the last for those above every bound.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: impl Fn(&mut Self),
        buckets: &Buckets,
        counts: impl IntoIterator<Item = u64>,
        sum: u64,
    ) {
        let mut total = 0;
        let mut counts = counts.into_iter();
        for le in buckets.le.iter().copied().chain(["+Inf"]) {
            total += counts.next().unwrap_or(0);
            self.series(name, "_bucket", &labels, Some(("le", le)));
            self.num(total);
            self.out.push(b'\n');
        }
        self.series(name, "_sum", &labels, None);
        self.scaled(sum, buckets.decimals);
        self.out.push(b'\n');
        self.series(name, "_count", &labels, None);
        self.num(total);
        self.out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Text)) -> String {
        let mut out = Vec::new();
        f(&mut Text::new(&mut out));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fractions_keep_their_leading_zeros() {
        assert_eq!(text(|t| t.scaled(1_234, 3)), "1.234");
        assert_eq!(text(|t| t.scaled(5, 3)), "0.005");
        assert_eq!(text(|t| t.scaled(0, 6)), "0.000000");
        assert_eq!(text(|t| t.scaled(42, 0)), "42");
    }

    #[test]
    fn samples_with_and_without_labels() {
        assert_eq!(text(|t| t.sample("a", |_| {}, 3)), "a 3\n");
        assert_eq!(
            text(|t| t.sample("a", |t| t.raw("f=\"x\""), 3)),
            "a{f=\"x\"} 3\n"
        );
        assert_eq!(
            text(|t| {
                t.raw("f=\"");
                t.label_value(b"a\"b\\c\nd\xff");
                t.raw("\"");
            }),
            "f=\"a\\\"b\\\\c\\nd\u{fffd}\""
        );
    }
}
