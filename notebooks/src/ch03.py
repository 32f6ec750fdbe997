"""第三章 Docker 基本概念 — engine (client/server), images and layers, containers, volumes, registries."""

from cells import SETUP, Chapter, reset_line

CONTAINERS = "ch03-note ch03-keep"
IMAGES = ("busybox:1.35 busybox:latest dockerlab/greeting:latest dockerlab/greeting:v1 dockerlab/greeting:v2 "
          "{lab.config.registry}/course/busybox:mine")
VOLUMES = "ch03-notes"


def chapter() -> Chapter:
    c = Chapter("ch03", "03-concepts.ipynb")
    c.md("""
    # 第三章　Docker 基本概念

    Docker 有三个基本概念：**镜像**（Image）、**容器**（Container）和**仓库**（Repository）。
    理解了它们，就理解了 Docker 的整个生命周期：从仓库取得镜像，用镜像创建容器，把做好的镜像推回仓库。

    **学完本章，你能够：**

    1. 说明 Docker 引擎的客户端/服务器结构，并绕过 `docker` 命令直接调用引擎的 REST API；
    2. 解释镜像的分层存储，看出两个镜像共用了哪些层；
    3. 区分容器存储层和数据卷，知道哪些数据会随容器删除而消失；
    4. 读懂 `仓库名:标签` 形式的镜像名，把镜像推送到私有仓库再拉回来。
    """)
    c.md("## 准备")
    c.code(SETUP)
    c.code(reset_line(CONTAINERS, IMAGES, VOLUMES) + '\n_ = registry.move_tag("dockerlab/greeting", "latest", "v1")')
    c.md("""
    ## 3.1 Docker 引擎

    Docker 引擎是一个客户端-服务器程序，由三部分组成：

    - **服务器**：一个长期运行的守护进程 `dockerd`，真正负责创建和管理镜像、容器、网络、数据卷；
    - **REST API**：守护进程对外提供的接口，程序通过它告诉守护进程要做什么；
    - **客户端**：命令行工具 `docker`，它把你敲的命令翻译成 API 请求。

    ## 3.2 Docker 系统架构

    客户端和守护进程可以在同一台机器上，也可以不在：客户端只需要能连上 API。在本机上，API 通常监听一个
    Unix socket（本实验的 socket 地址在环境变量 `DOCKER_HOST` 里）。我们不用 `docker` 命令，
    自己往这个 socket 里写一个最朴素的 HTTP 请求，问引擎的版本：
    """)
    c.code("""
    import json, os, socket

    def engine_get(path):
        # 一个最简单的 HTTP/1.0 客户端：连接 socket，发请求，读完整个响应
        s = socket.socket(socket.AF_UNIX)
        s.connect(os.environ["DOCKER_HOST"].removeprefix("unix://"))
        s.sendall(f"GET {path} HTTP/1.0\\r\\nHost: docker\\r\\n\\r\\n".encode())
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
        s.close()
        head, _, body = raw.decode().partition("\\r\\n\\r\\n")
        return head.splitlines()[0], json.loads(body)

    status, version = engine_get("/version")
    print("发出: GET /version")
    print("收到:", status)
    print({k: version[k] for k in ("Version", "ApiVersion", "Os", "Arch")})
    """)
    c.md("""
    路径前不写版本时，引擎按它自己的 API 版本（上面的 `ApiVersion`）回答；也可以写成 `/v1.51/version` 这样指定版本，
    太旧的版本引擎会拒绝。`docker version` 做的是同一件事，只是把 JSON 排成了表格：
    """)
    c.code("%docker version --format '{{.Server.Version}} {{.Server.APIVersion}} {{.Server.Os}}/{{.Server.Arch}}'")
    c.md("再问引擎「本地有哪些镜像」——这正是 `docker image ls` 背后的请求 `GET /images/json`：")
    c.code("""
    %docker pull busybox:1.35
    status, images = engine_get("/images/json")
    print(status)
    print(sorted(tag for img in images for tag in img["RepoTags"] or [] if tag.startswith("busybox")))
    """)
    c.code("%docker image ls busybox --format '{{.Repository}}:{{.Tag}}'")
    c.md("""
    书中那张「Docker 引擎组件」的图，画出来就是这样：
    """)
    c.code("""
    import graphviz

    g = graphviz.Digraph("engine", graph_attr={"rankdir": "LR", "fontname": "Helvetica"},
                         node_attr={"shape": "box", "style": "rounded,filled", "fillcolor": "#f6f8fa",
                                    "fontname": "Helvetica", "fontsize": "10"})
    g.node("cli", "客户端\\ndocker CLI")
    g.node("py", "其他程序\\n(本课程的 kernel_ext、\\n上面的 engine_get)")
    g.node("api", "REST API\\n(unix socket / TCP)", shape="cds", fillcolor="#fff8c5")
    g.node("d", "服务器\\ndockerd", fillcolor="#ddf4ff")
    for n, label in (("img", "镜像"), ("ctr", "容器"), ("net", "网络"), ("vol", "数据卷")):
        g.node(n, label, fillcolor="#dafbe1")
        g.edge("d", n, arrowhead="none")
    g.edge("cli", "api"); g.edge("py", "api"); g.edge("api", "d")
    g
    """)
    c.md("""
    书中把镜像和容器的关系比作面向对象里的**类**和**对象**：镜像是静态的定义，容器是镜像运行起来的实体。
    书中的概念表里各项，在这台机器上分别是：
    """)
    c.code("""
    info = lab.client.info()
    print("主机（Host）        :", "运行 dockerd 的这台机器 ·", info["OSType"], info["Architecture"])
    print("客户端（Client）    : docker 命令行 + 本课程的 Python 扩展")
    print("仓库（Registry）    :", lab.config.upstream, "(扮演 Docker Hub) ·", "加速器", lab.config.mirror)
    """)
    c.now("""
    书中表格最后一行的 **Docker Machine**（在 VirtualBox、云主机上一键装 Docker 的工具）已经停止开发，
    GitHub 仓库在 2021 年归档。今天在 Mac 和 Windows 上用 **Docker Desktop**，在云主机上直接安装 Docker Engine；
    想远程管理另一台机器上的引擎，用 `docker context` 或 `DOCKER_HOST=ssh://用户@主机`。书中给的 API 文档地址也已失效，
    现在的 Engine API 文档在 <https://docs.docker.com/reference/api/engine/>。
    """)
    c.md("""
    ## 3.3 Docker 镜像

    Linux 内核启动后，会挂载一个 **root 文件系统**，为用户空间提供程序和文件。Docker 镜像就相当于这样一个 root 文件系统：
    `debian:bookworm` 里装着一套最小的 Debian 12 的文件。除了文件，镜像里还有运行时用的配置（默认命令、环境变量、用户等）。
    镜像**不含任何动态数据**，构建好之后内容就不会再改变。看看 `busybox:1.35` 的配置：
    """)
    c.code("%docker image inspect busybox:1.35 --format '默认命令 {{json .Config.Cmd}} · 环境变量 {{json .Config.Env}}'")
    c.md("""
    ## 3.4 分层存储

    镜像并不是一个像 ISO 那样的大文件，而是由**多层文件系统**联合组成的。构建时一层一层地叠加：
    每一层构建完就不再改变，后一层的改动只发生在自己这一层。比如在后一层「删除」前一层的文件，
    实际只是在后一层做个「已删除」的标记，文件仍然存在于前一层，一直跟着镜像——所以构建镜像时，
    每一层都应该在结束前清理掉不需要的东西。

    `busybox:1.35` 由 3 层组成，每层用它内容的 sha256 摘要来标识：
    """)
    c.code("%docker image inspect busybox:1.35 --format '{{range .RootFS.Layers}}{{println .}}{{end}}'")
    c.md("""
    分层让复用变得容易：可以把别人做好的镜像当作基础层，只在上面加自己的层。课程的 `dockerlab/greeting` 的
    两个版本都建立在 `busybox:1.35` 上，各自只多了一层问候语。拉下来画出层关系图，蓝色是共用的层：
    """)
    c.code("""
    %docker pull dockerlab/greeting:v1
    %docker pull dockerlab/greeting:v2
    """)
    c.code("%layers busybox:1.35 dockerlab/greeting:v1 dockerlab/greeting:v2")
    c.md("""
    三个镜像一共只有 5 层：busybox 的 3 层存了一份，三个镜像共用。`docker system df` 的 SIZE 是去重后的实际占用
    （它统计引擎里的所有镜像：如果你还拉过别的镜像，它们也算在里面，所以这里的数字因人而异）：
    """)
    c.code("%docker system df --format '{{.Type}}: {{.Size}}'", "nbval-ignore-output")
    c.md("""
    ## 3.5 Docker 容器

    容器的本质是**进程**，只是运行在自己独立的命名空间里（第一章看到过）。容器可以被创建、启动、停止、暂停、删除。

    容器也是分层的：以镜像为基础层，在上面加一层**容器存储层**，容器运行时的所有写入都在这一层。
    **容器存储层的生命周期和容器一样**：容器删除，存储层也随之消失。试一试：在容器里写一个文件，删除容器，再用同一个镜像新建一个容器：
    """)
    c.code("""
    %docker run --name ch03-note busybox:1.35 sh -c 'echo 重要的笔记 > /note.txt; cat /note.txt'
    %docker diff ch03-note
    """)
    c.code("""
    %docker rm ch03-note
    %docker run --rm busybox:1.35 cat /note.txt
    """)
    c.md("""
    笔记不见了：它只存在于被删除的那个容器的存储层里；新容器有一个全新的、空的存储层。

    所以按照最佳实践，容器不应该往存储层里写数据，容器存储层要保持**无状态**。需要保存的数据写到**数据卷（Volume）**
    或绑定挂载的主机目录里：这些位置的读写绕过容器存储层，直接落到宿主（或网络存储）上，性能和稳定性也更好。
    **数据卷的生命周期独立于容器**：
    """)
    c.code("""
    %docker volume create ch03-notes
    %docker run --rm -v ch03-notes:/data busybox:1.35 sh -c 'echo 重要的笔记 > /data/note.txt'
    %docker run --rm -v ch03-notes:/data busybox:1.35 cat /data/note.txt
    """)
    c.md("写入的容器已经随 `--rm` 删除了，第二个容器照样读到了笔记。数据卷要单独删除：")
    c.code("%docker volume rm ch03-notes")
    c.md("""
    ## 3.6 Docker 仓库

    镜像要在别的机器上用，就需要一个集中存储、分发镜像的服务，这就是 **Docker Registry**。

    - 一个 Registry 里有多个**仓库**（Repository）；
    - 一个仓库里有多个**标签**（Tag）；每个标签对应一个镜像。
    - 用 `<仓库名>:<标签>` 指定具体哪个版本；不写标签就是 `latest`。

    通常一个仓库放同一个软件的不同版本，标签对应版本号。课程仓库里 `dockerlab/greeting` 有这些标签：
    """)
    c.code('registry.tags("dockerlab/greeting")')
    c.md("""
    不写标签时，命令行会告诉你它用了默认的 `latest`：
    """)
    c.code("!docker pull dockerlab/greeting")
    c.md("""
    `latest` 只是一个普通的标签名，并不自动表示「最新」：它指向哪个镜像，由发布者决定。这里它和 `v1` 是同一个镜像：
    """)
    c.code("%docker image ls dockerlab/greeting")
    c.md("""
    仓库名常常是**两段式**的，比如 `dockerlab/greeting`、书中的 `jwilder/nginx-proxy`：前一段往往是 Registry
    多用户环境下的用户名（或组织名），后一段是软件名。但这不是硬性规定，取决于具体的 Registry 软件或服务。
    在 Docker Hub 上只有一段的名字（`nginx`），其实是 `library/nginx`——官方镜像。

    ## 3.7 公有 Docker Registry

    最常用的公开服务是官方的 [Docker Hub](https://hub.docker.com/)，也是 `docker pull` 默认的 Registry。
    书中还提到 CoreOS 的 Quay.io、Google Container Registry，以及国内云服务商的加速器和镜像市场。
    """)
    c.now("""
    - Quay.io 今天属于 Red Hat（Red Hat 在 2018 年收购了 CoreOS）；Google Container Registry 已被
      **Artifact Registry** 取代；GitHub 也提供了 **GitHub Container Registry**（`ghcr.io`）。Kubernetes 的镜像从
      2023 年起改在 `registry.k8s.io` 发布。
    - Docker Hub 自 2020 年起对匿名和免费用户的拉取次数设了限制。
    - 书中列出的国内镜像市场（时速云、网易云、DaoCloud 等）大多已停止或改变了服务；国内加速器的现状见第五章。
    """)
    c.md("""
    ## 3.8 私有 Docker Registry

    也可以自己搭一个私有 Registry。官方提供的开源 Registry（项目名 distribution）实现了 Registry API，足够 `docker`
    命令使用，但没有图形界面、用户管理、访问控制等高级功能；Harbor、Sonatype Nexus 等第三方软件提供了这些。

    本实验的「Docker Hub」就是一个这样的私有 Registry（Debian 打包的 distribution），它和真的 Docker Hub 一样，
    你只能从中拉取、不能推送；你自己的推送去另一个属于你的私有 Registry，地址是：
    """)
    c.code("REG = lab.config.registry   # 书中是 127.0.0.1:5000\nprint(REG)")
    c.md("""
    要推送到某个 Registry，镜像名要以它的地址开头。先用 `docker tag` 给 `busybox:1.35` 起一个新名字
    （这只是给同一个镜像加一个名字，不会复制任何东西），再 `docker push`。地址放在变量 `REG` 里
    （实验环境会挑一个空闲的端口），`%docker` 会把 `{REG}` 换成变量的值：
    """)
    c.code("""
    %docker tag busybox:1.35 {REG}/course/busybox:mine
    %docker push {REG}/course/busybox:mine
    """)
    c.md("""
    推送也是一层一层进行的，Registry 里已经有的层不会重复上传（输出里是 `Layer already exists` 或 `Mounted from …`）。
    现在 Registry 里有了这个仓库和标签：
    """)
    c.code('registry.tags("course/busybox", REG)')
    c.md("删掉本地的这个名字，再从私有 Registry 拉回来：")
    c.code("""
    %docker image rm {REG}/course/busybox:mine
    %docker pull {REG}/course/busybox:mine
    """)
    c.now("""
    书中提到的 VMware Harbor 已经捐给 CNCF，是毕业项目，仓库地址现在是 <https://github.com/goharbor/harbor>。
    官方 Registry 的代码也捐给了 CNCF，项目名 **distribution**（<https://github.com/distribution/distribution>）；
    书中提到的商业版 Docker Trusted Registry 随 Docker 企业版一起在 2019 年卖给了 Mirantis。
    """)
    c.md("## 自我检测")
    c.exercise(
        1, "给镜像加一个标签",
        "给 `dockerlab/greeting:v2` 加一个新名字 `dockerlab/greeting:stable`。",
        "`docker tag 源镜像 新名字`。",
        "%docker tag dockerlab/greeting:v2 dockerlab/greeting:stable",
        "# 在这里写你的命令\n",
        'check.expect_image("dockerlab/greeting:stable", labels={"org.dockerlab.greeting.version": "v2"})')
    c.exercise(
        2, "让数据活过容器",
        "创建数据卷 `ch03-keep`，用一个**用完即删**的容器往里写文件 `/data/done.txt`，内容 `ok`。",
        "`docker volume create`；`docker run --rm -v 卷名:/data busybox:1.35 sh -c 'echo ok > /data/done.txt'`。",
        """%docker volume create ch03-keep
%docker run --rm -v ch03-keep:/data busybox:1.35 sh -c 'echo ok > /data/done.txt'""",
        "# 在这里写你的命令\n",
        """from kernel_ext.check import CheckResult
try:
    out = lab.run("busybox:1.35", ["cat", "/data/done.txt"], detach=False, remove=True,
                  volumes={"ch03-keep": {"bind": "/data", "mode": "ro"}}) if lab.client.volumes.list(filters={"name": "ch03-keep"}) else ""
except Exception:
    out = ""
CheckResult(out.strip() == "ok", "数据卷 ch03-keep 里有 done.txt，内容是 ok" if out.strip() == "ok"
            else "数据卷 ch03-keep 不存在，或里面没有内容为 ok 的 done.txt")""")
    c.md("""
    ## 小结

    - Docker 引擎 = 守护进程 `dockerd` + REST API + 客户端 `docker`；任何能发 HTTP 请求的程序都能指挥引擎。
    - **镜像**是只读的、分层的 root 文件系统加上运行配置；相同的层只存一份，多个镜像共用。
    - **容器**是镜像加一层可写的存储层运行起来的进程；存储层随容器删除而消失，要保存的数据放进**数据卷**。
    - **Registry** 里有多个**仓库**，仓库里有多个**标签**；`仓库名:标签`，默认 `latest`；
      镜像名以 Registry 地址开头时，推送和拉取就去那个 Registry。

    ## 收尾
    """)
    c.code(reset_line(CONTAINERS, IMAGES + " dockerlab/greeting:stable", VOLUMES + " ch03-keep"))
    return c
