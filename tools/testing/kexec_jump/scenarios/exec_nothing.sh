# SPDX-License-Identifier: GPL-2.0
# exec_without_image_is_einval: kexec -e with nothing loaded.
kj-guest exec
echo "KJ: done"
poweroff -f
