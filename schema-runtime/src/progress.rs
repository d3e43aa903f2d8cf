//! Progress bars on stderr for long steps (batch walks), drawn only when asked
//! ([`Migrator::progress_bars`](crate::Migrator::progress_bars), on for the CLI in a terminal)
//! and only with the `progress` feature; without it they cost nothing.

/// One progress bar, or nothing.
pub(crate) struct Progress {
    #[cfg(feature = "progress")]
    bar: indicatif::ProgressBar,
}

impl Progress {
    /// A bar for `total` items labelled `label`, starting at `position`; hidden unless `show`.
    #[cfg_attr(not(feature = "progress"), allow(unused_variables))]
    pub(crate) fn new(show: bool, total: u64, label: &str, position: u64) -> Self {
        #[cfg(feature = "progress")]
        {
            use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
            let bar = if show {
                ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
            } else {
                ProgressBar::hidden()
            };
            bar.set_style(
                ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} {per_sec} eta {eta}")
                    .expect("a valid template"),
            );
            bar.set_message(label.to_owned());
            bar.set_position(position);
            Progress { bar }
        }
        #[cfg(not(feature = "progress"))]
        Progress {}
    }

    /// Moves the bar to `position`.
    #[cfg_attr(not(feature = "progress"), allow(unused_variables))]
    pub(crate) fn set_position(&self, position: u64) {
        #[cfg(feature = "progress")]
        self.bar.set_position(position);
    }

    /// One more item done (the fleet's bar).
    #[cfg(feature = "cli")]
    pub(crate) fn inc(&self) {
        #[cfg(feature = "progress")]
        self.bar.inc(1);
    }

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        #[cfg(feature = "progress")]
        self.bar.finish_and_clear();
    }
}
