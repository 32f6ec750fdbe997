"""第一章 什么是 Docker — the kernel features the book names, seen on a real container."""

from cells import SETUP, Chapter, reset_line

CONTAINERS = "ch01-box"
IMAGES = "busybox:1.35"


def chapter() -> Chapter:
    c = Chapter("ch01", "01-what-is-docker.ipynb")
    c.md("""
    # 第一章　什么是 Docker

    **学完本章，你能够：**

    1. 说出 Docker 的来历，以及它用到的 Linux 内核技术：命名空间（namespace）、控制组（cgroup）和联合文件系统（Union FS）；
    2. 在一个真实的容器里**亲眼看到**这三样东西；
    3. 画出虚拟机和容器的结构差别，解释为什么容器更轻。
    """)
    c.md("## 准备")
    c.code(SETUP)
    c.code(reset_line(CONTAINERS, "busybox:latest", extra="!docker pull -q busybox:1.35 >/dev/null"))
    c.md("""
    ## 1.1 Docker 从哪里来

    Docker 起初是 dotCloud 公司（创始人 Solomon Hykes）的一个内部项目，2013 年 3 月以 Apache 2.0 协议开源，
    代码今天在 GitHub 的 [moby/moby](https://github.com/moby/moby) 维护。它火得太快，dotCloud 在 2013 年底干脆改名叫 Docker 公司。
    Docker 后来加入了 Linux 基金会，并推动成立了[开放容器倡议（OCI）](https://opencontainers.org/)，
    把镜像格式和容器运行时做成了开放标准。

    Docker 用 Go 语言编写。它本身并没有发明隔离技术，而是把 Linux 内核早已有的几样能力组合起来，包装得非常好用：

    | 内核技术 | 作用 | 本章第几节看到它 |
    |---|---|---|
    | **namespace（命名空间）** | 让进程看到「自己的一套」进程号、主机名、网络、挂载点…… | 1.2 |
    | **cgroup（控制组）** | 限制和统计进程能用多少 CPU、内存 | 1.3 |
    | **Union FS（联合文件系统）** | 把多层只读的镜像和一层可写层叠成一个根目录 | 1.4 |

    被这样隔离起来的进程，就叫**容器**。它属于「操作系统层面的虚拟化」：没有虚拟的硬件，也没有第二个内核。
    """)
    c.now("""
    - 书里说 Docker 起初基于 LXC，0.7 以后改用自研的 libcontainer，1.11 起拆分出 **runC** 和 **containerd**。
      这条路线延续到了今天：dockerd 把容器交给 containerd，containerd 再调用 runc 真正创建容器；runc 和 containerd
      都已捐给了 OCI 和 CNCF。书中提到的 AUFS 已被淘汰；后来的默认存储驱动是 **overlay2**，今天的 Docker 把镜像交给 containerd 保存
      （containerd 镜像存储，用它的 `overlayfs` 快照器，底层仍是内核的 overlay 文件系统，见 1.4）。
    - 「GitHub 上 4 万 6 千个星标」是 2018 年的数字，请以今天的页面为准。
    - 下面看看这台机器上的各个组件和版本：
    """)
    c.code("%docker version --format 'Docker 引擎 {{.Server.Version}}（Go {{.Server.GoVersion}}）'")
    c.code("%docker info --format '存储驱动 {{.Driver}} · 安全选项 {{join .SecurityOptions \", \"}}'")
    c.md("""
    ## 1.2 命名空间：容器有「自己的」进程号和主机名

    在容器里运行 `ps`：容器里的第一个进程，进程号是 **1**——就像一台刚开机的机器上的 init。
    """)
    c.code("%docker run --rm busybox:1.35 ps -o pid,comm")
    c.md("""
    可在这台机器上，PID 1 早就被占了。容器进程其实是主机上的一个普通进程，只是被放进了一个新的 **PID 命名空间**，
    在里面它看到的编号从 1 开始。主机名也一样，容器有自己的 **UTS 命名空间**，默认的主机名就是容器 ID 的前 12 位：
    """)
    c.code("%docker run --rm busybox:1.35 hostname")
    c.md("""
    每个进程属于哪些命名空间，可以从 `/proc/self/ns/` 里读到：每一项指向一个形如 `pid:[4026531836]` 的编号，
    编号相同就是同一个命名空间。把笔记本进程（运行在主机上）和容器里的进程对比一下：
    """)
    c.code("""
    import os

    names = ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"]
    host = {n: os.readlink(f"/proc/self/ns/{n}") for n in names}
    script = "for n in " + " ".join(names) + "; do echo $n $(readlink /proc/self/ns/$n); done"
    out = lab.run("busybox:1.35", ["sh", "-c", script], detach=False, remove=True)
    inside = dict(line.split(" ", 1) for line in out.strip().splitlines())

    print(f"{'命名空间':8} 容器和主机")
    for n in names:
        print(f"{n:10} {'相同' if inside[n] == host[n] else '不同 ← 容器有自己的'}")
    """)
    c.md("""
    进程（pid）、网络（net）、挂载点（mnt）、主机名（uts）、进程间通信（ipc）都是容器自己的。
    `user` 命名空间在这里也不同：本实验的引擎以**无 root 模式**（rootless，上面安全选项里的 `rootless`）运行在一个普通账户下，
    容器里的 root 在主机上只是这个普通账户。用默认的（以 root 运行的）引擎时 `user` 是相同的：容器里的 root 就是主机上的 root
    （除非专门开启 user namespace 重映射）——这是后面讲安全时要记住的一点。
    `cgroup` 命名空间是否独立取决于主机用的是 cgroup v1 还是 v2：这台机器上的引擎报告：
    """)
    c.code("%docker info --format 'cgroup 版本 {{.CgroupVersion}}，驱动 {{.CgroupDriver}}'")
    c.md("""
    ## 1.3 控制组：给容器的内存设上限

    用 `-m 64m` 运行容器，引擎会为它建一个 cgroup，把内存上限设为 64 MiB，在容器里就能读到这个上限
    （cgroup v1 的文件是 `memory.limit_in_bytes`，v2 是 `memory.max`，下面的命令两种都试）。
    先看看这台机器上的引擎能不能这样做：
    """)
    c.code("""
    info = lab.client.info()
    print("cgroup 版本", info["CgroupVersion"], "· cgroup 驱动", info["CgroupDriver"])
    for w in info.get("Warnings") or []:
        if "cgroup" in w:
            print(w)
    """)
    c.md("""
    驱动是 `none`：这台主机用的是 cgroup v1，而无 root 模式的引擎只有在 cgroup v2 的主机上才能（通过 systemd 委派）
    管理 cgroup。所以在这台机器上，引擎**不会**给容器设内存上限，`-m` 被默默忽略了。读一读容器里的值：
    """)
    c.code("%docker run --rm -m 64m busybox:1.35 sh -c 'cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes'")
    c.code("print(64 * 1024 * 1024, '字节 = 64 MiB')")
    c.md("""
    读到的是 9223372036854771712 这样的巨大数字（cgroup v1 表示「不限」的值），而不是 64 MiB 对应的 67108864。
    在 cgroup v2 的主机上，或者用以 root 运行的引擎，这里会读到 67108864。设了上限时，超过上限，内核会在容器里触发 OOM，
    杀掉占内存的进程——这只影响这个容器，不会拖垮整台机器。

    ## 1.4 联合文件系统：容器的根目录是「叠」出来的

    启动一个一直运行的容器，看它的根目录 `/` 是怎么挂载的：
    """)
    c.code("""
    %docker run -d --name ch01-box busybox:1.35 sleep 600
    mounts = lab.exec("ch01-box", ["cat", "/proc/mounts"]).output
    root = next(line for line in mounts.splitlines() if line.split()[1] == "/")
    fstype = root.split()[2]
    opts = dict(o.split("=", 1) for o in root.split()[3].split(",") if "=" in o)
    data_root = lab.client.info()["DockerRootDir"]
    print("文件系统类型:", fstype)
    print("lowerdir（只读，镜像的各层 + 一个 init 层）:", len(opts["lowerdir"].split(":")), "层")
    print("upperdir（可写，容器存储层）:", opts["upperdir"].replace(data_root, "$DOCKER_ROOT"))
    print("存储驱动:", lab.container("ch01-box").attrs["GraphDriver"]["Name"])
    """)
    c.md("""
    `overlay` 就是内核的联合文件系统（containerd 的 `overlayfs` 快照器和旧的 overlay2 驱动用的都是它）：几层只读的
    **lowerdir**（`busybox:1.35` 的 3 层，加一层引擎放 `/etc/hostname` 等文件的 init 层）和一层可写的 **upperdir**
    叠在一起，合成容器看到的根目录。

    在容器里写一个文件，它只落在 upperdir（容器的存储层）里，镜像的层一点没变。`docker diff` 列出存储层里的改动：
    """)
    c.code("""
    lab.exec("ch01-box", ["sh", "-c", "echo hi > /hello.txt"])
    print(lab.diff("ch01-box").text())
    """)
    c.md("""
    （这些目录是主机上的普通目录，容器的文件说到底就是主机上的普通文件。无 root 模式的引擎把它们挂在自己的挂载命名空间里，
    所以这个笔记本进程不直接去读它们，而是问引擎。）

    ## 1.5 容器和虚拟机

    传统虚拟机先虚拟出一套硬件，在上面运行一个完整的操作系统（有自己的内核），应用运行在那个系统里。
    容器里的应用则**直接运行在宿主的内核上**：容器里没有内核，也没有虚拟的硬件，只是一组被隔离、被限制的进程。
    书中用两张图对比了这两种结构，这里重新画出来：
    """)
    c.code("""
    import graphviz

    def stack(g, name, title, rows, colour):
        with g.subgraph(name=f"cluster_{name}") as s:
            s.attr(label=title, fontname="Helvetica", fontsize="12", style="rounded", color="#8c959f")
            prev = None
            for i, (label, fill) in enumerate(rows):
                node = f"{name}{i}"
                s.node(node, label, shape="box", style="filled", fillcolor=fill, width="2.6",
                       fontname="Helvetica", fontsize="10")
                if prev:
                    s.edge(node, prev, style="invis")
                prev = node

    g = graphviz.Digraph("vm_vs_container", graph_attr={"rankdir": "BT", "nodesep": "0.6"})
    app = "#dafbe1"
    stack(g, "vm", "虚拟机", [("硬件", "#eaeef2"), ("宿主操作系统", "#ddf4ff"), ("Hypervisor（虚拟化层）", "#fff8c5"),
                            ("客户机操作系统（各自的内核）", "#ffebe9"), ("依赖库 Bins/Libs", "#f6f8fa"), ("应用 A · 应用 B", app)], app)
    stack(g, "ctr", "容器", [("硬件", "#eaeef2"), ("宿主操作系统（唯一的内核）", "#ddf4ff"), ("Docker 引擎", "#fff8c5"),
                           ("依赖库 Bins/Libs", "#f6f8fa"), ("应用 A · 应用 B", app)], app)
    g
    """)
    c.md("""
    少了「虚拟硬件」和「客户机操作系统」这两层，容器启动不用开机、不用多占一份内核和系统的内存，
    所以更轻、更快。代价是：所有容器共用宿主的内核，容器里不能换一个别的内核（比如在 Linux 上直接跑 Windows 容器）。
    第二章会在这台机器上实际测量两者的差距。
    """)
    c.md("## 自我检测")
    c.exercise(
        1, "容器里的进程",
        "用 `busybox:1.35` 运行一个名为 `ch01-box` 的**后台**容器，让它执行 `sleep 600`（上面 1.4 做过，若已删除请重新创建）。",
        "`docker run -d --name 名字 镜像 命令`。如果提示名字被占用，说明它还在运行，直接检查即可。",
        "%docker run -d --name ch01-box busybox:1.35 sleep 600",
        "# 在这里写你的命令\n",
        'check.expect_container("ch01-box", running=True, image="busybox:1.35")')
    c.exercise(
        2, "内存上限",
        "用一条 `docker run -m 32m` 命令，在容器里读出它的内存上限（这台机器上会读到什么？）。"
        "在引擎能设上限的主机上，应该读到多少字节？把它赋给变量 `answer`。",
        "把 1.3 的命令里的 `-m 64m` 换成 `-m 32m`；32 MiB = 32 × 1024 × 1024 字节。",
        """%docker run --rm -m 32m busybox:1.35 sh -c 'cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes'
answer = 32 * 1024 * 1024""",
        "answer = None  # 改成你的答案\n",
        """from kernel_ext.check import CheckResult
CheckResult(answer == 32 * 1024 * 1024, "正确：32 MiB = 33554432 字节" if answer == 32 * 1024 * 1024
            else "还不对：上限以字节为单位，1 MiB = 1024 × 1024 字节")""")
    c.md("""
    ## 小结

    - Docker 把 Linux 内核的 **namespace**（看到什么）、**cgroup**（能用多少）和 **联合文件系统**（根目录从哪来）组合起来，
      让一组普通进程像在一台独立的机器里运行——这就是容器。
    - 容器里的 PID 1、主机名、网络都是自己的；内存上限由 cgroup 设定（引擎能管理 cgroup 时）；根目录是镜像的只读层加一层可写层叠出来的（overlay）。
    - 容器没有自己的内核，直接用宿主的内核，所以比虚拟机轻便得多。

    ## 收尾
    """)
    c.code(reset_line(CONTAINERS, IMAGES))
    return c
