//! berth-supervisord: the berthd daemon (not built yet).
