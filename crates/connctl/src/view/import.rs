//! `connctl import` output: what was adopted or left for `apply` (standard output), and each
//! connection that could not be adopted (standard error, one `error:` line each).

use connctl_engine::adopt::Adoption;

/// Prints the adoption; true when it has problems (the run then exits 1).
pub fn print(adoption: &Adoption) -> bool {
    let Adoption {
        adopted,
        left_for_apply,
        problems,
        objects_recorded,
        objects_left,
    } = adoption;
    if !adopted.is_empty() {
        println!("Imported {}: {}", adopted.len(), adopted.join(", "));
    }
    if *objects_recorded > 0 {
        println!("Recorded {objects_recorded} listed data object(s) that Immuta has as the YAML lists them.");
    }
    if *objects_left > 0 {
        println!(
            "{objects_left} listed data object(s) differ from the YAML or are missing in Immuta: `connctl plan` shows them."
        );
    }
    if !left_for_apply.is_empty() {
        println!(
            "Not in Immuta, left for `connctl apply` to create: {}",
            left_for_apply.join(", ")
        );
    }
    if adopted.is_empty() && left_for_apply.is_empty() && problems.is_empty() {
        println!("Nothing to import: every selected connection is already managed.");
    }
    for p in problems {
        // A mismatch quotes values Immuta sent.
        eprintln!("error: {}", connctl_spec::redact(&p.to_string()));
    }
    !problems.is_empty()
}
