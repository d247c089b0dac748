"""Disks, filesystems, partitions, boot."""

from __future__ import annotations

import re

from ..cmd import Cmd, Ctx, first_positional, has_long, has_short, split_opts
from ..model import Finding
from .base import cs, de, fb, ro, rule


@rule("wipefs")
def _wipefs(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, _ = split_opts(cmd.argv[1:], {"-o", "--offset", "-t", "--types"})
    if (has_short(opts, "ao") or has_long(opts, "--all", "--offset")) and not (
        has_short(opts, "n") or has_long(opts, "--no-act")
    ):
        return fb("wipefs -a erases filesystem signatures")
    return ro("wipefs listing signatures")


@rule("mkswap")
def _mkswap(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    if any(a.startswith("/dev/") for a in cmd.argv[1:]):
        return fb("mkswap on a device destroys its data")
    return cs("mkswap on a file")


@rule("blkdiscard", "mke2fs", "mkdosfs", "mkntfs", "mkexfatfs", "zerofree")
def _always_forbidden_disk(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    return fb(f"{cmd.name} erases a disk or filesystem")


@rule("badblocks")
def _badblocks(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, _ = split_opts(cmd.argv[1:], {"-b", "-c", "-o", "-p", "-t"})
    return fb("badblocks -w overwrites the disk") if has_short(opts, "w") else cs("badblocks scans a disk")


@rule("fdisk", "sfdisk", "cfdisk", "gdisk", "sgdisk", "parted", "partprobe", "cgdisk")
def _partition(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    opts, pos = split_opts(args)
    if cmd.name == "sgdisk" and (has_short(opts, "ZozR") or has_long(opts, "--zap", "--zap-all", "--clear")):
        return fb("sgdisk --zap/--clear wipes the partition table")
    if cmd.name == "sfdisk" and (has_long(opts, "--delete", "--wipe") or has_short(opts, "W")):
        return fb("sfdisk --delete/--wipe erases partitions")
    listing = has_short(opts, "lsp") or has_long(opts, "--list", "--dump", "--show-size", "--print", "--json")
    if listing and not (cmd.name == "sfdisk" and ctx.stdin and (ctx.stdin.text or ctx.stdin.upstream)):
        return ro(f"{cmd.name} listing")
    if cmd.name == "parted" and pos and pos[-1] in {"print", "p"}:
        return ro("parted print")
    if cmd.name == "parted" and any(w in {"mklabel", "rm", "mkpart", "resizepart"} for w in pos):
        return fb("parted mklabel/rm rewrites the partition table")
    return de(f"{cmd.name} can rewrite the partition table")


@rule(
    "grub-install",
    "grub2-install",
    "update-grub",
    "grub-mkconfig",
    "grub2-mkconfig",
    "update-initramfs",
    "dracut",
)
def _boot(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    return cs(f"{cmd.name} rewrites boot files")


@rule("efibootmgr")
def _efi(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, _ = split_opts(cmd.argv[1:], {"-b", "-o", "-L", "-l", "-d", "-p", "-t"})
    if has_short(opts, "BoOcaAnNt") or has_long(opts, "--delete-bootnum", "--bootorder", "--create"):
        return de("efibootmgr changes the firmware boot entries")
    return ro("efibootmgr listing")


@rule("hdparm")
def _hdparm(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    if any(
        a.startswith(("--security-erase", "--write-sector", "--trim-sector", "--security-set-pass"))
        for a in args
    ):
        return fb("hdparm secure-erase/write-sector destroys the disk")
    opts, _ = split_opts(args)
    if opts and all(re.fullmatch(r"-[iIgCtT]+", o) for o in opts):
        return ro("hdparm query")
    return cs("hdparm changes drive settings")


@rule("nvme")
def _nvme(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    sub, _ = first_positional(cmd.argv[1:])
    if sub in {"format", "sanitize", "write-zeroes", "delete-ns", "write"}:
        return fb(f"nvme {sub} destroys the drive's data")
    if sub in {"list", "smart-log", "id-ctrl", "id-ns", "error-log", "list-subsys", "version", "help", None}:
        return ro(f"nvme {sub}")
    return cs(f"nvme {sub}")


@rule("cryptsetup")
def _cryptsetup(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    sub, _ = first_positional(cmd.argv[1:], {"-d", "--key-file", "-c", "-s", "-h", "--type"})
    if sub in {"luksFormat", "erase", "luksErase", "reencrypt"}:
        return fb(f"cryptsetup {sub} destroys the volume's keys/data")
    if sub in {"status", "luksDump", "isLuks", "luksUUID", "benchmark", "--version"}:
        return ro(f"cryptsetup {sub}")
    if sub in {"luksKillSlot", "luksRemoveKey"}:
        return de(f"cryptsetup {sub} removes a key")
    return cs(f"cryptsetup {sub}")


@rule("mount", "swapon")
def _mount(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, pos = split_opts(cmd.argv[1:])
    if not pos and (not opts or all(o in {"-l", "--show", "-s", "--summary", "-v", "-t"} for o in opts)):
        return ro(f"{cmd.name} listing")
    return cs(f"{cmd.name} changes mounts/swap")


@rule("umount", "swapoff")
def _umount(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, pos = split_opts(cmd.argv[1:])
    if has_short(opts, "a") or has_long(opts, "--all") or "/" in pos:
        return de(f"{cmd.name} -a / of / unmounts the system")
    return cs(f"{cmd.name} unmounts")


@rule("pvremove", "vgremove", "lvremove")
def _lvm_remove(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    return de(f"{cmd.name} deletes a volume")


@rule("pvs", "vgs", "lvs", "pvdisplay", "vgdisplay", "lvdisplay", "pvscan", "vgscan", "lvscan")
def _lvm_ro(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    return ro(cmd.name)


@rule("zpool", "zfs")
def _zfs(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    sub, _ = first_positional(cmd.argv[1:])
    if sub in {"destroy", "labelclear", "rollback"}:
        return de(f"{cmd.name} {sub} destroys data")
    if sub in {"list", "status", "get", "iostat", "history", "events", "version", None}:
        return ro(f"{cmd.name} {sub}")
    return cs(f"{cmd.name} {sub}")


@rule("mdadm")
def _mdadm(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, _ = split_opts(cmd.argv[1:])
    if has_long(opts, "--zero-superblock") or has_long(opts, "--create") or has_short(opts, "C"):
        return fb("mdadm --create/--zero-superblock destroys array data")
    if has_long(opts, "--detail", "--examine", "--query") or has_short(opts, "DEQ"):
        return ro("mdadm query")
    return cs("mdadm changes arrays")


@rule("smartctl")
def _smartctl(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, _ = split_opts(cmd.argv[1:])
    if has_short(opts, "st") or has_long(opts, "--set", "--test", "--smart"):
        return cs("smartctl changes settings / starts a test")
    return ro("smartctl")
