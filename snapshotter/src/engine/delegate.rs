//! Forwarding the [`Snapshotter`](crate::Snapshotter) role from a backend to its engine.

/// Implements [`Snapshotter`] for a backend type that has an `engine` field.
macro_rules! delegate_snapshotter {
    ($ty:ty) => {
        impl $crate::Snapshotter for $ty {
            fn prepare(
                &self,
                key: &str,
                parent: &str,
                labels: $crate::Labels,
            ) -> $crate::Result<Vec<$crate::Mount>> {
                $crate::Snapshotter::prepare(&self.engine, key, parent, labels)
            }
            fn view(
                &self,
                key: &str,
                parent: &str,
                labels: $crate::Labels,
            ) -> $crate::Result<Vec<$crate::Mount>> {
                $crate::Snapshotter::view(&self.engine, key, parent, labels)
            }
            fn mounts(&self, key: &str) -> $crate::Result<Vec<$crate::Mount>> {
                $crate::Snapshotter::mounts(&self.engine, key)
            }
            fn commit(&self, name: &str, key: &str, labels: $crate::Labels) -> $crate::Result<()> {
                $crate::Snapshotter::commit(&self.engine, name, key, labels)
            }
            fn remove(&self, key: &str) -> $crate::Result<()> {
                $crate::Snapshotter::remove(&self.engine, key)
            }
            fn stat(&self, key: &str) -> $crate::Result<$crate::Info> {
                $crate::Snapshotter::stat(&self.engine, key)
            }
            fn update(
                &self,
                info: $crate::Info,
                fieldpaths: &[String],
            ) -> $crate::Result<$crate::Info> {
                $crate::Snapshotter::update(&self.engine, info, fieldpaths)
            }
            fn walk(&self, filter: $crate::Filter<'_>) -> $crate::Result<Vec<$crate::Info>> {
                $crate::Snapshotter::walk(&self.engine, filter)
            }
            fn usage(&self, key: &str) -> $crate::Result<$crate::Usage> {
                $crate::Snapshotter::usage(&self.engine, key)
            }
            fn cleanup(&self) -> $crate::Result<usize> {
                $crate::Snapshotter::cleanup(&self.engine)
            }
        }
    };
}
pub(crate) use delegate_snapshotter;
