//! Fixtures shared by berth's test suites: the end-to-end tests (`berth-tests`) and
//! berthctl's daemon tests (`berth-client`), which cannot depend on each other.

pub mod registry;
