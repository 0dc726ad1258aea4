//! Finding where in the text a key is, for messages that name the line.

/// Finds the `key: value` line inside the mapping that starts at
/// (`line`, `column`) whose value is the first quoted string of `message`:
/// returns its line, column and key.
pub(super) fn locate_value(
    text: &str,
    line: usize,
    column: usize,
    message: &str,
) -> Option<(usize, usize, String)> {
    let mut quoted = message.split('"');
    let value = quoted.nth(1)?;
    let indent = column.checked_sub(1)?;
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate().skip(line.checked_sub(1)?) {
        let this_indent = l.len() - l.trim_start().len();
        if i + 1 > line && !l.trim().is_empty() && this_indent < indent {
            break;
        }
        // Each `key: value` pair on the line, block or flow style.
        let mut rest = *l;
        while let Some((before, after)) = rest.split_once(':') {
            let key = before
                .rsplit(|c: char| c.is_whitespace() || c == '{' || c == ',')
                .next()
                .unwrap_or_default();
            let val = after
                .split([',', '}'])
                .next()
                .unwrap_or_default()
                .trim()
                .trim_matches(|c| c == '"' || c == '\'');
            if !key.is_empty() && val == value {
                let col = l.find(key).map_or(1, |c| c + 1);
                return Some((i + 1, col, key.to_string()));
            }
            rest = after;
        }
    }
    None
}

/// 1-based line of the first occurrence of `needle`, 0 when absent.
pub(super) fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map_or(0, |i| i + 1)
}

/// 1-based line of `key:` inside entry `index` of the block-style
/// `neighbors:` list; `key` empty: the entry's first line. `None` when the
/// list is written another way or the key is not there (a default).
pub(super) fn neighbor_key_line(text: &str, index: usize, key: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| l.trim_end() == "neighbors:")?;
    let mut entry: Option<usize> = None;
    let mut dash_indent = None;
    for (n, l) in lines.iter().enumerate().skip(start + 1) {
        let body = l.trim_start();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let indent = l.len() - body.len();
        if indent == 0 {
            break;
        }
        let mut body = body;
        if let Some(rest) = body.strip_prefix("- ") {
            if dash_indent.is_none_or(|d| d == indent) {
                dash_indent = Some(indent);
                entry = Some(entry.map_or(0, |e| e + 1));
                if entry == Some(index) && key.is_empty() {
                    return Some(n + 1);
                }
                body = rest.trim_start();
            }
        }
        if entry == Some(index) && !key.is_empty() && body.starts_with(&format!("{key}:")) {
            return Some(n + 1);
        }
        if entry.is_some_and(|e| e > index) {
            return None;
        }
    }
    None
}
