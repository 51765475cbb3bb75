//! The built console, embedded at compile time (see `build.rs`): the `console` function and the
//! local run serve these files through `shared::api::console`.

include!(concat!(env!("OUT_DIR"), "/assets.rs"));
