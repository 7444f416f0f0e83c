//! The resource behind a WIT `cursor` (`domicile:app/data`): an open query
//! of one invocation. Its own module, so that the generated bindings name
//! it without depending on the data interface's implementation.

use domicile_store::QueryCursor;

/// An open query of one invocation, with the fields it filters and sorts
/// on (checked again against the grants at every batch).
pub struct CursorState {
    pub(crate) cursor: QueryCursor,
    pub(crate) uses: Vec<String>,
}
