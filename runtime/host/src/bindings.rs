//! The only `bindgen!` of the project: host-side bindings of `wit/`.
//!
//! The `service` world generates every shared interface; the `importer`
//! world reuses them (`with`) so one host implementation serves both.

pub mod service {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "service",
        // Host calls can fail for host reasons (storage I/O), which trap;
        // everything an app can cause is a WIT `error` it handles.
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "domicile:app/data.cursor": crate::cursor::CursorState,
        },
    });
}

pub mod importer {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "importer",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "domicile:app/types": super::service::domicile::app::types,
            "domicile:app/data": super::service::domicile::app::data,
            "domicile:app/log": super::service::domicile::app::log,
            "domicile:app/clock": super::service::domicile::app::clock,
            "domicile:app/egress": super::service::domicile::app::egress,
            "domicile:app/notify": super::service::domicile::app::notify,
        },
    });
}

pub use service::domicile::app::{clock, data, egress, log, notify, types};
