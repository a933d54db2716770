//! The behaviour suite of DESIGN.md section 2 (built by the timeout-tower issue).
