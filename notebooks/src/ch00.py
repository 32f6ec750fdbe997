"""00 课程首页: the course map, how to start, what runs where."""

from cells import SETUP, Chapter


def chapter() -> Chapter:
    c = Chapter("ch00", "00-index.ipynb")
    c.md("""
    # Docker 实验课 · 课程首页

    这门课把一本 Docker 入门书的前六章变成可以动手运行的笔记本：书里讲到的每一条命令，
    都在你面前这台机器上一个**真实的 Docker 引擎**里执行，结果就显示在命令下面。全程离线，不需要 Docker Hub 账号。

    ## 课程地图

    | 笔记本 | 内容 | 你会亲手做的事 |
    |---|---|---|
    | [01 什么是 Docker](01-what-is-docker.ipynb) | 容器是什么，和虚拟机有什么不同 | 在容器里看它自己的 PID 1、主机名、命名空间、cgroup 和 overlay 挂载 |
    | [02 为什么要使用 Docker](02-why-docker.ipynb) | 容器相对虚拟机的优势 | 在这台机器上实测启动时间、磁盘、性能和密度，和书中的表格对照 |
    | [03 基本概念](03-concepts.ipynb) | 引擎、镜像、容器、仓库 | 直接向引擎的 API 发 HTTP 请求；看镜像的层；用数据卷保存数据；推送到私有仓库 |
    | [04 安装 Docker](04-install.ipynb) | 各系统的安装方法 | 检查这台机器的安装是否健康；运行 `hello-world` |
    | [05 镜像加速器](05-mirror.ipynb) | 配置 Registry Mirror | 找到实验环境的加速器；读懂 `daemon.json` |
    | [06 使用 Docker 镜像](06-images.ipynb) | 获取、列出、删除镜像，`commit` | 制造并清理虚悬镜像；删除镜像时看懂 Untagged/Deleted；用 commit 定制 nginx |

    建议按顺序学习；每个笔记本也可以单独运行，开头会自动清理上次留下的东西，结尾会删除自己创建的容器和镜像。

    ## 怎么开始

    1. 在终端里进入课程目录，运行 `./lab up`。它会启动实验用的 Docker 引擎、两个本地镜像仓库，然后打开 JupyterLab。
    2. 打开一个笔记本，确认右上角的内核是 **Docker Lab (Python 3)**。
    3. 从上到下运行每个单元格（<kbd>Shift</kbd>+<kbd>Enter</kbd>）。想重来就选 *Kernel → Restart Kernel and Run All Cells*。

    笔记本里有三种写法运行 Docker 命令，效果相同：

    - `%docker image ls` —— 本课程的魔法命令，等于在终端里敲 `docker image ls`；
    - `!docker image ls` —— 交给 shell 执行，需要管道、`$(…)` 或 Python 变量时用它；
    - JupyterLab 的 **Terminal**（*File → New → Terminal*）—— 需要交互式终端（`docker run -it`、`docker exec -it`）时用它。

    ## 什么在哪里运行
    """)
    c.code("""
    import graphviz

    g = graphviz.Digraph("lab", graph_attr={"rankdir": "LR", "fontname": "Helvetica", "fontsize": "10"},
                         node_attr={"shape": "box", "style": "rounded,filled", "fillcolor": "#f6f8fa",
                                    "fontname": "Helvetica", "fontsize": "10"})
    g.node("browser", "你的浏览器\\nJupyterLab 页面")
    g.node("kernel", "笔记本内核\\nPython + kernel_ext\\n%docker 魔法命令")
    g.node("cli", "docker 命令行\\n(客户端)")
    g.node("engine", "Docker 引擎 dockerd\\n(实验环境专用)", fillcolor="#ddf4ff")
    g.node("ctr", "容器", fillcolor="#dafbe1")
    g.node("mirror", "镜像加速器\\n127.0.0.1:5001", fillcolor="#fff8c5")
    g.node("hub", "上游仓库\\n127.0.0.1:5000\\n(扮演 Docker Hub)", fillcolor="#fff8c5")
    g.edge("browser", "kernel", "WebSocket")
    g.edge("kernel", "cli")
    g.edge("kernel", "engine", "REST API\\n(unix socket)")
    g.edge("cli", "engine", "REST API")
    g.edge("engine", "ctr", "runc")
    g.edge("engine", "mirror", "docker pull")
    g.edge("mirror", "hub", "缺的才去取")
    g
    """)
    c.md("""
    - **Docker 引擎**是 `./lab up` 单独启动的一个 `dockerd`，数据放在课程目录的 `.lab/` 下，不会碰你机器上原有的 Docker。
    - **上游仓库**扮演 Docker Hub：`docker pull nginx` 时，引擎经由**镜像加速器**（第五章）从它那里取镜像。
      里面准备了课程用到的镜像：`hello-world`、`busybox`、`debian`、`nginx`、`redis` 和 `dockerlab/greeting`。
    - 书中用到的 `ubuntu`、`centos` 镜像，课程里用 `debian:bookworm` 代替（原因见第六章）。

    ## 检查环境

    运行下面两个单元格。第一个载入课程扩展并连接引擎；第二个显示引擎的版本。都没有报错，就可以开始了。
    """)
    c.code(SETUP)
    c.code("%docker version --format '客户端 {{.Client.Version}} · 引擎 {{.Server.Version}} · API {{.Server.APIVersion}}'")
    c.md("""
    如果看到「连接不上 Docker 引擎」，在终端运行 `./lab up`，再重新运行上面的单元格。

    ## 书与现在

    原书写于 2018 年。那以后 Docker 变了不少：版本号规则、安装方法、默认的存储驱动和构建器、国内的镜像加速器……
    凡是书里的说法已经过时的地方，笔记本里都有一个这样的框：

    > **🕒 现在的情况**
    >
    > 这里写今天的实际情况，以及课程为什么这样安排。

    书里的图片（容器与虚拟机的对比、引擎的组成）在笔记本里都重新画过；书里的示例输出，
    笔记本里都换成了在这台机器上真实运行的结果。
    """)
    return c
