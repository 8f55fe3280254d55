//! Glob patterns in configuration (cloud tagging rules, SLA interface rules, layers).

/// True when `text` matches `pattern`, where `*` matches any run of characters (also
/// none) and `?` exactly one; everything else matches itself, case-sensitively.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            // Let the last `*` swallow one more character and try again.
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn stars_and_question_marks() {
        assert!(glob_match("*", ""));
        assert!(glob_match("pay*", "payments"));
        assert!(glob_match("*-db-?", "ledger-db-2"));
        assert!(glob_match("vm-*-?", "vm-pay-2"));
        assert!(!glob_match("vm-*-?", "vm-pay-22"));
        assert!(!glob_match("Pay*", "payments"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
    }
}
