//! Output helpers: plain column tables for people, JSON values for scripts, and names
//! (arbitrary bytes on the wire) made printable.

use std::fmt::Write as _;

/// Bytes from the wire as text: lossy UTF-8, control characters escaped (`\t`, `\n`,
/// `\u{1b}`), so a name can never break a table or a terminal.
///
/// ```
/// assert_eq!(gearbox_cli::output::text(b"a\tb\xff"), "a\\tb\u{fffd}");
/// ```
pub fn text(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    if !s.chars().any(char::is_control) {
        return s.into_owned();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Bytes from the wire as a JSON string (lossy UTF-8; JSON escapes the rest).
pub fn json_text(b: &[u8]) -> serde_json::Value {
    serde_json::Value::String(String::from_utf8_lossy(b).into_owned())
}

/// A table of left- or right-aligned columns separated by two spaces.
#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers; a header starting with `>` is right-aligned
    /// (the `>` is not shown).
    ///
    /// ```
    /// use gearbox_cli::output::Table;
    /// let mut t = Table::new(&["FUNCTION", ">QUEUED"]);
    /// t.row(vec!["resize".into(), "12".into()]);
    /// assert_eq!(t.render(), "FUNCTION  QUEUED\nresize        12\n");
    /// ```
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers
                .iter()
                .map(|h| h.trim_start_matches('>').to_string())
                .collect(),
            right: headers.iter().map(|h| h.starts_with('>')).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells are empty).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The header line and the rows, each line ending in `\n`; no trailing spaces.
    pub fn render(&self) -> String {
        let n = self.headers.len();
        let cell = |row: &Vec<String>, i: usize| row.get(i).cloned().unwrap_or_default();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, w) in widths.iter_mut().enumerate() {
                *w = (*w).max(cell(row, i).chars().count());
            }
        }
        let mut out = String::new();
        let lines = std::iter::once(&self.headers).chain(self.rows.iter());
        for row in lines {
            let mut line = String::new();
            for (i, w) in widths.iter().enumerate() {
                let c = cell(row, i);
                let pad = w - c.chars().count();
                if i > 0 {
                    line.push_str("  ");
                }
                if self.right[i] {
                    let _ = write!(line, "{}{c}", " ".repeat(pad));
                } else if i + 1 < n {
                    let _ = write!(line, "{c}{}", " ".repeat(pad));
                } else {
                    line.push_str(&c);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_lines_have_no_trailing_spaces() {
        let mut t = Table::new(&["SERVER", "FUNCTION", ">TOTAL", "NOTE"]);
        t.row(vec!["a:1".into(), "f".into(), "3".into(), String::new()]);
        t.row(vec![
            "b:22".into(),
            "long_name".into(),
            "1000".into(),
            "x".into(),
        ]);
        assert_eq!(
            t.render(),
            "SERVER  FUNCTION   TOTAL  NOTE\n\
             a:1     f              3\n\
             b:22    long_name   1000  x\n"
        );
    }

    #[test]
    fn text_escapes_controls() {
        assert_eq!(text(b"plain"), "plain");
        assert_eq!(text(b"a\nb\x1b"), "a\\nb\\u{1b}");
    }
}
