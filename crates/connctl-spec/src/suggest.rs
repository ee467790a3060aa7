//! "Did you mean …?" suggestions for misspelt field names and enum values.

/// The candidate closest to `input`, if it is close enough to be a plausible typo.
/// Case differences count as near-misses (`snowflake` → `Snowflake`).
pub fn did_you_mean<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = input.to_lowercase();
    if let Some(exact) = candidates.iter().find(|c| c.to_lowercase() == lower) {
        return Some(exact);
    }
    candidates
        .iter()
        .map(|c| (c, strsim::jaro_winkler(&lower, &c.to_lowercase())))
        .filter(|(_, score)| *score >= 0.82)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| *c)
}

/// `a`, `b` or `c` — a list of choices for a help line.
pub fn one_of(candidates: &[&str]) -> String {
    let quoted: Vec<String> = candidates.iter().map(|c| format!("`{c}`")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_misses_only() {
        let fields = ["warehouse", "database", "role", "host", "port"];
        assert_eq!(did_you_mean("warehous", &fields), Some("warehouse"));
        assert_eq!(did_you_mean("databse", &fields), Some("database"));
        assert_eq!(did_you_mean("zzz", &fields), None);
        assert_eq!(
            did_you_mean("snowflake", &["Snowflake", "Databricks"]),
            Some("Snowflake")
        );
        assert_eq!(one_of(&["a", "b", "c"]), "`a`, `b` or `c`");
    }
}
