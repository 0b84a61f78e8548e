//! berth-api: the wire contract (generated code lands here).
