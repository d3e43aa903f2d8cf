//! Compile-time checks of `#[migration]`: each `tests/ui/*.rs` is one mistake, with the
//! compiler's expected output beside it in `.stderr`; `tests/ui/pass/` must compile and run.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*.rs");
    t.pass("ui/pass/*.rs");
}
