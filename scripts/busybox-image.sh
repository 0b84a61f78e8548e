#!/usr/bin/env bash
# busybox-image.sh OUT.tar [NAME]: builds a one-layer OCI image archive (an OCI image
# layout in a tar) from the host's static busybox, with no network. NAME (default
# localhost/busybox:latest) is recorded as the image name. The archive is reproducible:
# fixed mtimes, owners and order, gzip -n.
set -euo pipefail
export LC_ALL=C
out=${1:?usage: busybox-image.sh OUT.tar [NAME]}
name=${2:-localhost/busybox:latest}
busybox=${BUSYBOX:-/bin/busybox}
file "$busybox" 2>/dev/null | grep -q 'statically linked' || ldd "$busybox" 2>&1 | grep -q 'not a dynamic' ||
    { echo "busybox-image.sh: $busybox is not static (apt-get install busybox-static)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
chmod 1777 "$root/tmp"

layout=$work/layout
mkdir -p "$layout/blobs/sha256"
tar --sort=name --format=posix --pax-option=delete=atime,delete=ctime --numeric-owner \
    --owner=0 --group=0 --mtime=@1700000000 -C "$root" -cf "$work/layer.tar" .
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n -c "$work/layer.tar" >"$work/layer.tar.gz"
layer=$(sha256sum "$work/layer.tar.gz" | cut -d' ' -f1)
layer_size=$(stat -c %s "$work/layer.tar.gz")
mv "$work/layer.tar.gz" "$layout/blobs/sha256/$layer"

blob() { # writes stdin as a blob, prints "digest size"
    local tmp=$work/blob d s
    cat >"$tmp"
    d=$(sha256sum "$tmp" | cut -d' ' -f1)
    s=$(stat -c %s "$tmp")
    mv "$tmp" "$layout/blobs/sha256/$d"
    echo "$d $s"
}
read -r config config_size < <(printf '%s' "{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"2023-11-14T22:13:20Z\",\"config\":{\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"],\"Cmd\":[\"sh\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$diff_id\"]}}" | blob)
read -r manifest manifest_size < <(printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$config\",\"size\":$config_size},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$layer\",\"size\":$layer_size}]}" | blob)
tag=${name##*:}
printf '%s' "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$manifest\",\"size\":$manifest_size,\"annotations\":{\"io.containerd.image.name\":\"$name\",\"org.opencontainers.image.ref.name\":\"$tag\"},\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}}]}" >"$layout/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@1700000000 -C "$layout" -cf "$out" oci-layout index.json blobs
echo "$out: $name (manifest sha256:$manifest)"
