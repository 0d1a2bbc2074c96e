//! Wording the front ends share, so the dashboard and the terminal say the same thing the same way.

use chrono::{DateTime, Utc};

/// "just now", "5 s ago", "3 min ago", "2 h ago", "4 d ago": coarse on purpose (a page shows the exact time on
/// hover, a table beside it).
pub fn relative_time(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - at).num_seconds();
    match seconds {
        i64::MIN..=4 => "just now".to_owned(),
        5..=59 => format!("{seconds} s ago"),
        60..=3_599 => format!("{} min ago", seconds / 60),
        3_600..=86_399 => format!("{} h ago", seconds / 3_600),
        _ => format!("{} d ago", seconds / 86_400),
    }
}
