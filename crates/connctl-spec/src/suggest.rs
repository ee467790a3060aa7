//! "Did you mean …?" suggestions for misspelt field names and enum values.

/// The candidate closest to `input`, if it is close enough to be a plausible typo.
/// Case differences count as near-misses (`snowflake` → `Snowflake`).
pub fn did_you_mean<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    closest(input, candidates, 1).into_iter().next()
}

/// Up to `max` candidates close enough to `input` to be a plausible typo, closest first.
pub fn closest<'a>(input: &str, candidates: &[&'a str], max: usize) -> Vec<&'a str> {
    let lower = input.to_lowercase();
    if let Some(exact) = candidates.iter().find(|c| c.to_lowercase() == lower) {
        return vec![exact];
    }
    let mut scored: Vec<(&'a str, f64)> = candidates
        .iter()
        .map(|c| (*c, strsim::jaro_winkler(&lower, &c.to_lowercase())))
        .filter(|(_, score)| *score >= 0.82)
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    scored.into_iter().take(max).map(|(c, _)| c).collect()
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
        let keys = ["sf-main", "sf-mains", "dbx-main", "other"];
        assert_eq!(closest("sf-mian", &keys, 3), ["sf-main", "sf-mains"]);
        assert_eq!(closest("sf-mian", &keys, 1), ["sf-main"]);
    }
}
