//! `/`: the status page, one self-contained HTML file (`page.html`: no
//! external assets, inline style and script). Its script fetches
//! `/status.json` every 2 seconds and works out message rates from the
//! differences between two answers.

/// The page, as served.
pub(super) const PAGE: &str = include_str!("page.html");
