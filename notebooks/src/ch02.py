"""第二章 为什么要使用 Docker — the book's comparison table, measured on this machine."""

from cells import SETUP, Chapter, reset_line


def chapter() -> Chapter:
    c = Chapter("ch02", "02-why-docker.ipynb")
    c.md("""
    # 第二章　为什么要使用 Docker

    和传统的虚拟化方式相比，容器有很多优势。书中列了六条，最后用一张表总结容器和虚拟机的差别。
    这一章不只是读这张表：我们在这台机器上**同时启动虚拟机和容器，实际测量**，把测得的数字填在书中的说法旁边。

    **学完本章，你能够：**

    1. 说出容器相对虚拟机的六条优势；
    2. 读懂一次真实的容器与虚拟机对比测量，说清每个数字量的是什么；
    3. 判断书中「秒级 vs 分钟级」「上千个 vs 几十个」这类说法今天在什么条件下成立。
    """)
    c.md("## 准备")
    c.code(SETUP)
    c.md("""
    ## 2.1 更高效地利用系统资源

    容器不需要虚拟硬件，也不用运行一个完整的操作系统，所以无论是程序运行速度、内存开销还是文件存储，都比虚拟机省。
    同样配置的一台主机，往往能运行更多的应用。

    ## 2.2 更快的启动时间

    虚拟机启动一个应用往往要几分钟：先「开机」，再引导一个完整的系统。容器直接运行在宿主内核上，
    不需要启动操作系统，能做到秒级甚至毫秒级的启动，开发、测试、部署都快得多。

    ## 2.3 一致的运行环境

    开发、测试、生产环境不一致，是「在我的机器上明明没问题」这类 bug 的根源。镜像提供了**除内核以外**完整的运行环境，
    保证应用在哪里运行都看到同样的文件和配置。

    ## 2.4 持续交付和部署

    用 `Dockerfile` 描述镜像怎么构建，结合持续集成（CI）做自动测试，运维直接在生产环境部署同一个镜像，
    甚至用持续部署（CD）自动上线。Dockerfile 让构建过程透明：开发和运维都能看懂应用需要什么环境。

    ## 2.5 更轻松的迁移

    因为运行环境一致，同一个镜像在物理机、虚拟机、公有云、私有云、笔记本上的运行结果都一样，迁移时不用担心环境变化。

    ## 2.6 更轻松的维护和扩展

    分层存储让复用变得容易（第三章、第六章会亲手看到），在基础镜像上扩展自己的镜像也很简单。
    Docker 和各开源项目一起维护了大量高质量的**官方镜像**，可以直接用于生产，也可以作为基础定制。
    """)
    c.now("""
    书中「官方镜像」的链接指向已经关闭的 Docker Store；官方镜像今天在 Docker Hub 上标为 **Docker Official Image**，
    另有 **Verified Publisher**（由软件厂商发布）和 **Sponsored OSS** 两类受信任的镜像。
    """)
    c.md("""
    ## 2.7 对比传统虚拟机：实测

    书中的总结表是这样的：

    | 特性 | 容器 | 虚拟机 |
    |:---:|:---:|:---:|
    | 启动 | 秒级 | 分钟级 |
    | 硬盘使用 | 一般为 MB | 一般为 GB |
    | 性能 | 接近原生 | 弱于 |
    | 系统支持量 | 单机支持上千个容器 | 一般几十个 |

    下面的单元格在这台机器上做一次对比（大约需要半分钟）：

    - **虚拟机**：用 QEMU 启动一个极简的 Linux 虚拟机（Debian 的内核加一个很小的 initramfs），
      从启动到它打印出「已就绪」记一次时间；
    - **容器**：用 `busybox` 镜像启动一个容器，同样计时；
    - **性能**：同一个小程序分别在主机上、容器里、虚拟机里运行，比较用时；
    - **密度**：同时启动 4 个虚拟机和 4 个容器，测它们一共占多少内存，再推算这台机器的可用内存能放下多少个。

    每一项重复 3 次取中位数。测量结束后，它启动的虚拟机和容器都会被清理掉。
    """)
    c.code("""
    from kernel_ext.vmcompare import compare

    result = compare(lab, runs=3, density=4)
    result
    """, "nbval-ignore-output")
    c.md("""
    （上面的数字每次运行都会有些不同，这个单元格的输出不参与自动检查。）画成图：
    """)
    c.code("result.chart()", "nbval-ignore-output")
    c.md("""
    ### 读一读这些数字

    - **启动**：这里的虚拟机只有几秒，远不到书中的「分钟级」——因为它极简：没有 BIOS 自检、没有 systemd、没有要启动的服务。
      一个装了完整发行版的传统虚拟机开机确实要几十秒到几分钟。反过来，Firecracker 这类专门优化过的微虚拟机
      在有硬件虚拟化（KVM）的机器上能在 0.1 秒级启动。「容器快、虚拟机慢」的差距今天依然存在，但它取决于虚拟机有多「重」。
    - **硬盘**：容器镜像不带内核，busybox 只有 2 MB；虚拟机至少要带一个内核。书中的「GB」指的是装了完整系统的虚拟磁盘。
    - **性能**：容器里的程序就是宿主 CPU 直接执行的普通进程，和原生几乎一样。这台机器上的虚拟机用的是纯软件模拟（TCG），
      所以慢好几倍；在有 KVM 的机器上，虚拟机的 CPU 性能通常也只差几个百分点，差距更多体现在 I/O 和内存上。
    - **系统支持量**：按实测的每实例内存推算。容器只是几个进程，内存开销以 MB 计；每个虚拟机都要为自己的内核和内存预留上百 MB。

    不管具体数字如何，下面这几条结论在这台机器上是否成立，可以直接检查：
    """)
    c.code("""
    from kernel_ext.check import CheckResult

    claims = [
        ("容器启动比虚拟机快", (result.start_ratio() or 0) > 1),
        ("容器占用的硬盘比虚拟机少", (result.container.disk_bytes or 0) < (result.vm.disk_bytes or 0)),
        ("容器里程序的速度比虚拟机里更接近原生", (result.ratio(result.container) or 99) < (result.ratio(result.vm) or 0)),
        ("同样的内存能放下更多容器", (result.fit(result.container, result.density_ct) or 0)
                                     > (result.fit(result.vm, result.density_vm) or 0)),
    ]
    for text, ok in claims:
        display(CheckResult(ok, text))
    """)
    c.md("## 自我检测")
    c.exercise(
        1, "读出启动时间",
        "从 `result` 中取出**容器**启动时间的中位数（秒），赋给变量 `ct_start`。",
        "容器一侧是 `result.container`，启动时间序列是 `.start_s`，中位数是 `.median`。",
        "ct_start = result.container.start_s.median",
        "ct_start = None  # 改成你的答案\n",
        """CheckResult(ct_start == result.container.start_s.median,
            "正确" if ct_start == result.container.start_s.median else "还不对：试试 result.container.start_s.median")""")
    c.exercise(
        2, "推算的依据",
        "书中说「单机支持上千个容器」。用 `result.fit(...)` 算出按这台机器的可用内存能放下多少个容器，赋给 `how_many`。",
        "`result.fit(result.container, result.density_ct)`。",
        "how_many = result.fit(result.container, result.density_ct)",
        "how_many = None  # 改成你的答案\n",
        """CheckResult(how_many == result.fit(result.container, result.density_ct),
            "正确" if how_many == result.fit(result.container, result.density_ct) else "还不对：看看提示")""")
    c.md("""
    ## 小结

    - 容器的优势：资源利用率高、启动快、环境一致、便于持续交付、迁移容易、维护和扩展方便。
    - 书中的对比表方向是对的，具体数字取决于条件：极简的虚拟机也能几秒启动，有 KVM 时虚拟机的 CPU 性能接近原生；
      但容器没有内核要启动、没有内存要为客户机系统预留，这两点带来的差距始终存在。
    - 本章测量时启动的虚拟机和容器都已自动清理。

    ## 收尾

    删除测量时拉取的 `busybox` 镜像：
    """)
    c.code(reset_line(images="busybox:latest"))
    return c
