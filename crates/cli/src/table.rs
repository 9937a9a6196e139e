//! Aligned plain-text tables for terminal output.

/// Renders rows under a header, each column as wide as its widest cell; numbers align right.
pub(crate) fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let numeric = |cell: &str| {
        !cell.is_empty()
            && cell
                .chars()
                .all(|c| c.is_ascii_digit() || ".,%-".contains(c) || c.is_ascii_whitespace())
    };
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| {
                if numeric(cell) {
                    format!("{cell:>width$}")
                } else {
                    format!("{cell:<width$}")
                }
            })
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    out.push_str(
        &widths
            .iter()
            .map(|w| "─".repeat(*w))
            .collect::<Vec<_>>()
            .join("  "),
    );
    out.push('\n');
    for row in rows {
        debug_assert_eq!(row.len(), columns);
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_align() {
        let out = super::render(
            &["metric", "value"],
            &[
                vec!["spans/s".into(), "51234".into()],
                vec!["p99".into(), "3.2 ms".into()],
            ],
        );
        assert_eq!(
            out,
            "metric   value\n───────  ──────\nspans/s   51234\np99      3.2 ms\n"
        );
    }
}
