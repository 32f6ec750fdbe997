"""Learner-facing messages of the container-vs-VM comparison (keys ``vm.*``)."""

from __future__ import annotations

from ..messages import register

register({
    # -- faults: one sentence each -------------------------------------------------------------
    "vm.qemu_missing": {
        "zh": "没有找到 qemu-system-x86_64，虚拟机部分跳过：请运行 apt-get install -y qemu-system-x86。",
        "en": "qemu-system-x86_64 is not installed, so the VM side is skipped: run apt-get install -y qemu-system-x86.",
    },
    "vm.kernel_download": {
        "zh": "无法下载内核软件包 {package}（{detail}）：先运行 apt-get update，再重试。",
        "en": "Could not download the kernel package {package} ({detail}): run apt-get update, then try again.",
    },
    "vm.busybox_missing": {
        "zh": "没有静态链接的 busybox，无法制作 initramfs：请运行 apt-get install -y busybox-static。",
        "en": "No statically linked busybox to build the initramfs from: run apt-get install -y busybox-static.",
    },
    "vm.cc_missing": {
        "zh": "没有能静态编译的 C 编译器，CPU 测试跳过：请运行 apt-get install -y musl-tools。",
        "en": "No C compiler that links statically, so the CPU test is skipped: run apt-get install -y musl-tools.",
    },
    "vm.cc_failed": {
        "zh": "编译 CPU 测试程序失败：{detail}",
        "en": "Compiling the CPU benchmark failed: {detail}",
    },
    "vm.kvm_broken": {
        "zh": "/dev/kvm 存在，但用 KVM 的试启动在 {seconds} 秒内没有完成（{detail}），改用 TCG 纯软件模拟。",
        "en": "/dev/kvm exists but a test boot with KVM did not finish within {seconds} s ({detail}), so TCG software emulation is used.",
    },
    "vm.kvm_absent": {
        "zh": "本机没有可用的 /dev/kvm，虚拟机用 TCG 纯软件模拟运行。",
        "en": "No usable /dev/kvm on this machine, so the VM runs under TCG software emulation.",
    },
    "vm.boot_timeout": {
        "zh": "虚拟机在 {seconds} 秒内没有启动完成（共尝试 {tries} 次），这一轮没有数据。",
        "en": "The VM did not finish booting within {seconds} s ({tries} tries), so this round has no figure.",
    },
    "vm.boot_failed": {
        "zh": "qemu 启动失败（退出码 {code}）：{detail}",
        "en": "qemu failed to start (exit code {code}): {detail}",
    },
    "vm.memory_short": {
        "zh": "内存预算 {budget} MiB 只够同时运行 {fit} 台虚拟机（每台约 {each} MiB），没有启动全部 {want} 台。",
        "en": "The memory budget of {budget} MiB fits only {fit} VMs (about {each} MiB each), so not all {want} were started.",
    },
    "vm.engine_missing": {
        "zh": "连接不上 Docker 引擎，容器部分跳过：{detail}",
        "en": "The Docker Engine cannot be reached, so the container side is skipped: {detail}",
    },
    "vm.container_failed": {
        "zh": "容器没有输出就绪标记（{detail}），这一轮没有数据。",
        "en": "The container did not print its ready marker ({detail}), so this round has no figure.",
    },
    "vm.bad_args": {
        "zh": "参数不合理：runs 取 1–20，density 取 0–32。",
        "en": "Bad arguments: runs must be 1–20 and density 0–32.",
    },
    # -- progress ------------------------------------------------------------------------------
    "vm.p.assets": {"zh": "准备内核、initramfs 和测试程序", "en": "Preparing kernel, initramfs and benchmark"},
    "vm.p.kernel_fetch": {"zh": "下载内核软件包 {package}", "en": "Downloading kernel package {package}"},
    "vm.p.kernel_ok": {"zh": "内核 {version}（{mib} MiB）", "en": "kernel {version} ({mib} MiB)"},
    "vm.p.initramfs_ok": {"zh": "initramfs {kib} KiB", "en": "initramfs {kib} KiB"},
    "vm.p.bench_ok": {"zh": "测试程序 {kib} KiB（{cc}）", "en": "benchmark {kib} KiB ({cc})"},
    "vm.p.cached": {"zh": "已构建（缓存）：{path}", "en": "already built (cached): {path}"},
    "vm.p.probe": {"zh": "检测 KVM 是否可用", "en": "Checking whether KVM works"},
    "vm.p.native": {"zh": "在宿主机上直接运行 CPU 测试", "en": "Running the CPU benchmark natively"},
    "vm.p.vm": {"zh": "启动虚拟机 {i}/{n}", "en": "Booting VM {i}/{n}"},
    "vm.p.ct": {"zh": "启动容器 {i}/{n}", "en": "Starting container {i}/{n}"},
    "vm.p.density_ct": {"zh": "同时启动 {k} 个容器", "en": "Starting {k} containers at once"},
    "vm.p.density_vm": {"zh": "同时启动 {k} 台虚拟机", "en": "Booting {k} VMs at once"},
    "vm.p.cleanup": {"zh": "清理：停止全部虚拟机和容器", "en": "Cleaning up: stopping every VM and container"},
    "vm.p.done": {"zh": "完成，用时 {seconds} 秒", "en": "Done in {seconds} s"},
    "vm.p.title": {"zh": "容器 vs 虚拟机：实测", "en": "Container vs VM, measured"},
    # -- table ---------------------------------------------------------------------------------
    "vm.t.feature": {"zh": "特性", "en": "Feature"},
    "vm.t.container": {"zh": "容器", "en": "Container"},
    "vm.t.vm": {"zh": "虚拟机", "en": "Virtual machine"},
    "vm.t.vm_short": {"zh": "虚拟机", "en": "VM"},
    "vm.t.book": {"zh": "书中", "en": "book"},
    "vm.t.measured": {"zh": "实测", "en": "measured"},
    "vm.t.start": {"zh": "启动", "en": "Start-up"},
    "vm.t.disk": {"zh": "硬盘使用", "en": "Disk use"},
    "vm.t.perf": {"zh": "性能", "en": "Performance"},
    "vm.t.count": {"zh": "系统支持量", "en": "Instances per host"},
    "vm.t.memory": {"zh": "内存（补充）", "en": "Memory (extra row)"},
    "vm.b.start_ct": {"zh": "秒级", "en": "seconds"},
    "vm.b.start_vm": {"zh": "分钟级", "en": "minutes"},
    "vm.b.disk_ct": {"zh": "一般为 MB", "en": "usually MB"},
    "vm.b.disk_vm": {"zh": "一般为 GB", "en": "usually GB"},
    "vm.b.perf_ct": {"zh": "接近原生", "en": "near native"},
    "vm.b.perf_vm": {"zh": "弱于", "en": "weaker"},
    "vm.b.count_ct": {"zh": "单机支持上千个容器", "en": "thousands per host"},
    "vm.b.count_vm": {"zh": "一般几十个", "en": "usually dozens"},
    "vm.b.memory": {"zh": "（书中未列）", "en": "(not in the book)"},
    "vm.m.na": {"zh": "未测得", "en": "not measured"},
    "vm.m.native_x": {"zh": "耗时为原生的 {x} 倍", "en": "{x}× the native time"},
    "vm.m.fit": {"zh": "约 {n} 个（按 {budget} MiB 可用内存推算）", "en": "≈{n} (extrapolated to {budget} MiB available)"},
    "vm.m.started": {"zh": "实启 {ok}/{k}，{seconds} 秒", "en": "started {ok}/{k} in {seconds} s"},
    "vm.m.disk_ct": {"zh": "{mb} MB（{image} 镜像）", "en": "{mb} MB ({image} image)"},
    "vm.m.disk_vm": {"zh": "{mb} MB（内核 + initramfs）", "en": "{mb} MB (kernel + initramfs)"},
    "vm.m.notes": {"zh": "说明", "en": "Notes"},
    "vm.m.why": {"zh": "为什么是这些数字", "en": "Why these numbers"},
    "vm.m.running": {"zh": "（进行中……）", "en": "(running…)"},
    "vm.m.summary": {
        "zh": "加速方式：{accel}；机器类型：{machine}；每项重复 {runs} 次，取中位数（括号内为最小–最大）；总用时 {seconds} 秒。",
        "en": "Accelerator: {accel}; machine: {machine}; each figure is the median of {runs} runs (min–max in brackets); total {seconds} s.",
    },
    "vm.m.chart_start": {"zh": "启动到就绪（秒）", "en": "Start to ready (s)"},
    "vm.m.chart_mem": {"zh": "内存（MiB）", "en": "Memory (MiB)"},
    "vm.m.chart_cpu": {"zh": "CPU 测试耗时（相对原生）", "en": "CPU benchmark time (× native)"},
    "vm.m.native": {"zh": "原生", "en": "native"},
    # -- explanations --------------------------------------------------------------------------
    "vm.x.start": {
        "zh": "启动：容器只是宿主内核里的一组新进程（命名空间 + cgroup），没有内核要启动；虚拟机要先模拟硬件、再引导一个完整的内核。这里的虚拟机已是极简的（只有内核 + 几百 KB 的 initramfs，没有 systemd），书中的“分钟级”指带完整发行版的传统虚拟机。",
        "en": "Start-up: a container is just new processes in the host kernel (namespaces + cgroups), there is no kernel to boot; a VM must emulate hardware and boot a whole kernel. This VM is already minimal (a kernel plus a few hundred KB of initramfs, no systemd); the book's 'minutes' means a classic VM with a full distribution.",
    },
    "vm.x.memory": {
        "zh": "内存：虚拟机的数字是 qemu 进程的 PSS，包含客户机内存和模拟器本身；容器的数字是它的 cgroup 用量加上 containerd-shim 进程——容器内的进程和宿主上的普通进程一样计费。",
        "en": "Memory: the VM figure is the qemu process's PSS, guest RAM plus the emulator itself; the container figure is its cgroup usage plus its containerd-shim, since processes in a container are charged like any host process.",
    },
    "vm.x.disk": {
        "zh": "硬盘：虚拟机要带上自己的内核（和根文件系统）；容器镜像只带用户态文件，内核与宿主共用，多个容器还共享同一镜像的只读层。",
        "en": "Disk: a VM carries its own kernel (and root file system); an image carries only user-space files, shares the host's kernel, and many containers share one image's read-only layers.",
    },
    "vm.x.cpu": {
        "zh": "性能：同一个静态程序在三处运行。容器里就是宿主 CPU 直接执行，只差几个百分点；虚拟机在 {accel} 下 {accel_note}",
        "en": "Performance: one static program run in three places. In a container the host CPU runs it directly, within a few per cent; the VM under {accel} {accel_note}",
    },
    "vm.x.cpu_tcg": {
        "zh": "要把每条客户机指令翻译成宿主指令，所以明显更慢；有 KVM 硬件虚拟化时，这个差距通常只有几个百分点。",
        "en": "translates every guest instruction, so it is clearly slower; with KVM hardware virtualisation the gap is usually a few per cent.",
    },
    "vm.x.cpu_kvm": {
        "zh": "由硬件虚拟化直接执行客户机指令，计算密集的任务接近原生。",
        "en": "runs guest instructions directly on hardware virtualisation, so compute-bound work comes close to native.",
    },
    "vm.x.count": {
        "zh": "系统支持量：按每个实例实测的内存，推算内存预算内能放下多少个；实际能放多少还取决于 CPU、文件句柄和工作负载。",
        "en": "Instances per host: the memory each instance measured, extrapolated to the memory budget; the real limit also depends on CPU, file handles and the workload.",
    },
    "vm.x.kernel": {
        "zh": "内核：容器里 uname -r 显示宿主内核 {host}；虚拟机里显示它自己的内核 {guest}。",
        "en": "Kernel: uname -r in the container shows the host's kernel {host}; in the VM it shows its own kernel {guest}.",
    },
    "vm.x.published": {
        "zh": "公开发表的参考数字（不是本机实测）：Firecracker 官方规格称每个 microVM 启动到用户态初始化 ≤125 ms、内存开销 ≤5 MiB（需 KVM）；IBM 2014 年研究报告《An Updated Performance Comparison of Virtual Machines and Linux Containers》（Felter 等）测得 Docker 在 CPU 与内存上与原生几乎相同，KVM 在 I/O 密集负载上开销明显。",
        "en": "Published reference figures (not measured here): Firecracker's specification states ≤125 ms to user-space init and ≤5 MiB memory overhead per microVM (with KVM); the IBM 2014 research report 'An Updated Performance Comparison of Virtual Machines and Linux Containers' (Felter et al.) found Docker equal to native on CPU and memory, while KVM added clear overhead on I/O-heavy work.",
    },
})
