"""第六章 使用 Docker 镜像 — every command of 6.1–6.4, run on the lab's engine."""

from cells import Chapter, reset_line

# Images this chapter pulls or makes; removed at the start (leftovers) and at the end.
CONTAINERS = "webserver web2 web3 greeter"
IMAGES = ("nginx:v2 nginx:v3 course/steps:0.1 nginx:1.22 nginx:latest redis:7.0 redis:latest "
          "debian:bookworm debian:12 debian:latest busybox:1.35 busybox:latest hello-world:latest "
          "dockerlab/greeting:latest")


def chapter() -> Chapter:
    c = Chapter("ch06", "06-images.ipynb")
    c.md("""
    # 第六章　使用 Docker 镜像

    镜像是 Docker 三大概念（镜像、容器、仓库）里最先要打交道的一个：容器必须从镜像启动，本地没有镜像时，
    Docker 会先去仓库把它拉下来。本章把书中 6.1–6.4 的每一条命令都在实验环境的真实 Docker 引擎上跑一遍。

    **学完本章，你能够：**

    1. 用 `docker pull` 获取镜像，读懂拉取时逐层输出的信息和摘要（digest）；
    2. 用 `docker image ls` 的各种参数（`-a`、`-f`、`-q`、`--digests`、`--format`）列出想看的镜像，
       分清「列表里的体积」「压缩体积」和「实际占用磁盘」；
    3. 亲手制造一个**虚悬镜像**并清理它，认识**中间层镜像**；
    4. 用短 ID、镜像名、摘要删除镜像，解释输出里的 `Untagged` 和 `Deleted`；
    5. 用 `docker commit` 把容器的改动保存成新镜像，并说出为什么实际工作中不这样做。

    > **怎么用这个笔记本**：从上到下依次运行（<kbd>Shift</kbd>+<kbd>Enter</kbd>）。以 `%docker` 开头的单元格
    > 就是在终端里敲 `docker …`，只是结果直接显示在这里；`%diff`、`%layers` 等是本课程提供的图形化视图。
    """)
    c.md("""
    ## 准备

    载入课程的内核扩展，连接实验环境的 Docker 引擎。第二个单元格把本章上次运行可能留下的容器和镜像清掉
    （只清课程的镜像和在课程笔记本里创建的东西，你在终端里自己做的同名容器和镜像不动），
    这样本章从同一个起点开始（它不输出任何东西）。
    """)
    c.code("""
    %load_ext kernel_ext
    from kernel_ext import connect, check, registry
    lab = connect()
    """)
    c.code(reset_line(CONTAINERS, IMAGES) + "\n"
           "!rm -rf /tmp/dockerlab-steps; mkdir -p /tmp/dockerlab-steps\n"
           '_ = registry.move_tag("dockerlab/greeting", "latest", "v1")  # 见 6.2「虚悬镜像」')

    # ---------------------------------------------------------------- 6.1
    c.md("""
    ## 6.1 获取镜像

    从仓库获取镜像的命令是 `docker pull`，格式是：

    ```
    docker pull [选项] [Docker Registry 地址[:端口号]/]仓库名[:标签]
    ```

    - **Registry 地址**：形如 `<域名或 IP>[:端口号]`。省略时就是默认的 Docker Hub。
    - **仓库名**：两段式的 `<用户名>/<软件名>`。在 Docker Hub 上省略用户名时，用户名默认是 `library`，
      也就是官方镜像。所以 `debian` 的全名是 `docker.io/library/debian`。
    - **标签**：省略时默认是 `latest`。

    全部选项可以用 `--help` 查看：
    """)
    c.code("%docker pull --help")
    c.now("""
    书中用的是 `ubuntu:16.04`。Ubuntu 16.04 的标准支持在 2021 年就结束了，官方仓库里也早已不推荐它。
    本课程离线运行，实验环境的仓库里准备的是 **`debian:bookworm`**（Debian 12，也叫 `debian:12`），
    课程里 nginx、redis 镜像都以它为基础——所以书里出现 `ubuntu`、`centos` 的地方，我们都用 `debian:bookworm` 代替，
    命令的写法完全一样。
    """)
    c.code("%docker pull debian:bookworm")
    c.md("""
    读一读上面的输出：

    - 第一行 `bookworm: Pulling from library/debian`：没写 Registry 地址，所以去 Docker Hub（在本实验里，是扮演
      Docker Hub 的本地仓库）；没写用户名，所以是官方的 `library/debian`。
    - 接下来每一行以一个 12 位十六进制数开头，那是**层**的 ID（完整摘要的前 12 位）。镜像不是一个大文件，
      而是一层一层下载的——这就是第三章讲的分层存储。`debian:bookworm` 只有一层。
    - `Digest: sha256:…` 是整个镜像清单（manifest）的摘要，用来保证下载到的内容和仓库里的一模一样。

    课程的视图把每一层画成一个进度条；`%docker pull` 返回的结果对象还能回答「下了多少，哪些层本地已有」。
    下面拉取 `nginx:1.22`，它正是在 `debian:bookworm` 之上加了几层：
    """)
    c.code("""
    r = lab.pull("nginx:1.22")
    print(r.summary())
    """)
    c.md("""
    有 1 层「本地已有」：nginx 最底下那一层就是刚才下载的 Debian 层，本地已经有了，就不再下载
    （书中的 Docker 在拉取输出里把这样的层标成 `Already exists`，今天的引擎不再打印这一行）。
    你拉取时看到的层 ID 和摘要会和书上、和别人的不同：官方镜像一直在更新，同一个标签会不断指向新的构建。

    ### 运行

    有了镜像，就可以用它启动容器。书中的例子是交互式地进入 `bash`，再执行 `cat /etc/os-release`：

    ```bash
    $ docker run -it --rm debian:bookworm bash
    root@e7009c6ce357:/# cat /etc/os-release
    ```

    - `-it`：`-i` 保持标准输入打开（交互），`-t` 分配一个终端；
    - `--rm`：容器退出后自动删除它，省得留下一堆已经停止的容器；
    - `debian:bookworm`：用这个镜像启动；
    - `bash`：镜像名后面的是要运行的**命令**。

    笔记本的单元格不是交互式终端，所以这里把要执行的命令直接写在后面（想交互的话，在 JupyterLab 里
    打开 **Terminal**，`docker` 命令在那里一样能用）：
    """)
    c.code("%docker run --rm debian:bookworm cat /etc/os-release")
    c.md("因为用了 `--rm`，容器运行完就被删除了，`docker ps -a` 里找不到它：")
    c.code("%docker ps -a --filter ancestor=debian:bookworm")

    # ---------------------------------------------------------------- 6.2
    c.md("""
    ## 6.2 列出镜像

    再拉几个后面要用的镜像，然后用 `docker image ls` 列出本地所有的顶层镜像：
    """)
    c.code("""
    %docker pull nginx:latest
    %docker pull redis:7.0
    %docker pull busybox:1.35
    %docker pull hello-world
    """)
    c.code("%docker image ls")
    c.md("""
    列表的五列是：**仓库名**、**标签**、**镜像 ID**、**创建时间**、**占用空间**。

    注意 `nginx:1.22` 和 `nginx:latest` 的镜像 ID 一样：它们是同一个镜像的两个标签。
    **镜像 ID 才是镜像的唯一标识**，一个镜像可以有很多个标签。

    ### 镜像体积

    在 Docker Hub 网页上看到的是镜像**压缩后**的大小——下载和上传时镜像一直是压缩的，网络上关心的是流量。
    而本地的镜像要**解压展开**才能用来启动容器。今天的 Docker 用 containerd 保存镜像：压缩的层原样留着，
    旁边再放一份展开的，所以 `docker image ls` 的 SIZE 是这两份加起来占的磁盘（书中的 Docker 只存展开的那份）。
    我们直接去仓库里读 nginx 的清单（manifest），把各层的压缩大小加起来，和本地比一比：
    """)
    c.code("""
    import json, urllib.request
    from kernel_ext.formatting import human_size

    def compressed_size(repo, tag, reg=lab.config.upstream):
        # 清单里每一层的 (摘要, 压缩大小)；OCI 和 Docker 两种清单格式都认
        return sum(size for _, size in registry.image_layers(repo, tag, reg))

    row = next(iter(lab.images(filters={"reference": "nginx:1.22"})))
    print("仓库里（压缩）      :", human_size(compressed_size("library/nginx", "1.22")))
    print("本地的压缩内容      :", human_size(lab.image("nginx:1.22")["Size"]))
    print("本地占用（压缩+展开）:", human_size(row.size), "← docker image ls 的 SIZE")
    """)
    c.md("""
    另外，列表里各镜像体积的**总和**并不是它们实际占用的磁盘：不同镜像可以共用相同的层，而相同的层只存一份。
    `nginx` 和 `redis` 都建立在 `debian:bookworm` 那一层之上。用 `docker system df` 看实际占用：
    """)
    c.code("%docker system df")
    c.md("""
    把上面 `docker image ls` 的 SIZE 加起来，会远大于这里 Images 一行的 SIZE。课程的 `lab.images()`
    多给出两列：**SHARED**（与别的镜像共用的部分）和 **UNIQUE**（只属于它自己的部分），
    删除一个镜像最多只能腾出它 UNIQUE 那么多空间：
    """)
    c.code("lab.images()")
    c.md("画成图更清楚：每个方框是一层，蓝色的层被不止一个镜像共用，黄色方框是镜像（标签）。")
    c.code("%layers")
    c.md("""
    ### 虚悬镜像（dangling image）

    有时列表里会出现仓库名和标签都是 `<none>` 的镜像。它原本是有名字的：仓库的维护者发布了新版本，
    **把同一个标签移到了新镜像上**，你再 `docker pull` 这个标签时，名字就转移到新下载的镜像上，
    旧镜像的名字被取消，只剩 `<none>`。`docker build` 用同一个名字构建新版本时也会这样。

    我们来真的做一次。课程仓库里有个小镜像 `dockerlab/greeting`，`latest` 现在指向 `v1`：
    """)
    c.code("""
    %docker pull dockerlab/greeting
    %docker run --rm --name greeter dockerlab/greeting
    """)
    c.md("""
    现在扮演镜像的发布者：在「Docker Hub」（实验环境的上游仓库）里把 `latest` 移到 `v2`。
    `registry.move_tag` 做的就是发布者发新版时做的事：把 `v2` 的清单以 `latest` 的名字再上传一次。
    """)
    c.code("""
    print("latest 原来指向:", registry.manifest_digest("dockerlab/greeting", "latest")[:19])
    print("latest 现在指向:", registry.move_tag("dockerlab/greeting", "latest", "v2")[:19])
    print("v2 的摘要      :", registry.manifest_digest("dockerlab/greeting", "v2")[:19])
    """)
    c.code("""
    %docker pull dockerlab/greeting
    %docker image ls dockerlab/greeting
    """)
    c.md("旧的 v1 镜像失去了名字，成了虚悬镜像。`-f dangling=true` 只列出这类镜像：")
    c.code("%docker image ls -f dangling=true")
    c.md("虚悬镜像一般已经没有用了，可以放心删除。`docker image prune` 专门删它们（`-f` 表示不再询问确认）：")
    c.code("%docker image prune -f")
    c.code("check.expect_no_dangling()")
    c.md("""
    ### 中间层镜像

    书中说：为了加速构建、复用结果，Docker 经典的构建器会把构建的每一步保存为一个**中间层镜像**；
    默认的 `docker image ls` 只列顶层镜像，加 `-a` 才能看到全部。我们用一个分了几步的 Dockerfile
    构建一个镜像，看看今天的 Docker 怎样（Dockerfile 会在后面的章节细讲，这里只需要知道每条指令是一步）：
    """)
    c.code("""
    %%writefile /tmp/dockerlab-steps/Dockerfile
    FROM busybox:1.35
    RUN echo one > /one.txt
    RUN echo two > /two.txt
    LABEL com.example.version=0.1
    CMD cat /one.txt /two.txt
    """)
    c.code("%docker build -q -t course/steps:0.1 /tmp/dockerlab-steps")
    c.md("""
    （`-q` 只输出新镜像的 ID；不加 `-q` 时 BuildKit 逐步打印进度。）现在对比 `docker image ls` 和 `docker image ls -a`：
    """)
    c.code("%docker image ls course/steps")
    c.code("%docker image ls -a", "nbval-ignore-output")
    c.md("""
    在这台机器上，`-a` 并没有多出 `<none>` 的中间层镜像：今天的构建器 BuildKit 把每一步的结果存在**构建缓存**里，
    不再为每一步留一个镜像（见下面的「现在的情况」）。引擎也不再记录镜像的「父镜像」（`docker image inspect` 的
    `Parent` 是空的）。不过父子关系还看得出来：镜像的层如果是另一个镜像的层的**开头一段**，它就是建立在那个镜像之上的。
    课程的 `image_parents` 就是这样推断的，沿着它往下走一遍：
    """)
    c.code("""
    from kernel_ext.graph import graph_snapshot, image_parents

    snap = graph_snapshot(lab.api)
    parents = image_parents(snap.images)
    by_id = {img.id: img for img in snap.images}
    img = next(i for i in snap.images if "course/steps:0.1" in i.tags)
    while img:
        print(f"{img.id[7:19]}  {', '.join(img.tags) or '<none>':50.50} {len(img.chain)} 层")
        img = by_id.get(parents.get(img.id, ""))
    """)
    c.md("""
    `course/steps:0.1` 比 `busybox:1.35` 多了两层（两条 `RUN`；`LABEL` 和 `CMD` 只改配置，不产生层），下面 3 层是共用的，
    只存一份。用经典构建器的老版本 Docker 会在这两者之间再留下几个 `<none>` 的中间层镜像：它们和虚悬镜像不同，
    是别的镜像依赖的上一步，不应该删除，删除依赖它们的镜像时会被连带删除。虚悬镜像的过滤器 `dangling=true` 不会列出它们：
    """)
    c.code("%docker image ls -a -f dangling=true")
    c.now("""
    Docker 23.0 起，Linux 上默认的构建器换成了 **BuildKit**（`docker buildx build`）。BuildKit 把每一步的结果存在
    **构建缓存**里（`docker system df` 的 Build Cache 一行、`docker builder prune` 清理），不再产生 `<none>` 的中间层镜像，
    所以在新版 Docker 上 `docker image ls -a` 通常看不到它们了，本实验的 Docker 28 也是这样。
    用 containerd 保存镜像时（Docker 29 的默认），引擎也不再记录父镜像。
    """)
    c.md("""
    ### 列出部分镜像

    按仓库名列出：
    """)
    c.code("%docker image ls nginx")
    c.md("指定仓库名和标签，只列出那一个：")
    c.code("%docker image ls nginx:1.22")
    c.md("""
    过滤器 `--filter`（简写 `-f`）还有更多用法。`since` 列出在某个镜像**之后**创建的镜像，`before` 列出之前的
    （按镜像的创建时间比较）：
    """)
    c.code("%docker image ls -f since=redis:7.0")
    c.code("%docker image ls -f before=debian:bookworm")
    c.md("构建时用 `LABEL` 定义了标签（label）的镜像，可以按 label 过滤。我们的 `course/steps` 正好定义了书中那个 label：")
    c.code("%docker image ls -f label=com.example.version=0.1")
    c.md("""
    ### 以特定格式显示

    `-q` 只输出镜像 ID。和过滤器配合，就能得到「一组镜像的 ID」交给别的命令批量处理（6.3 会用到）：
    """)
    c.code("%docker image ls -q")
    c.md("`--digests` 多显示一列摘要：")
    c.code("%docker image ls --digests nginx")
    c.md("""
    想自己决定显示哪些列，用 [Go 模板](https://pkg.go.dev/text/template) 语法的 `--format`。只要 ID 和仓库名：
    """)
    c.code('%docker image ls --format "{{.ID}}: {{.Repository}}"')
    c.md("以 `table` 开头则保留表头、按列对齐：")
    c.code('%docker image ls --format "table {{.ID}}\\t{{.Repository}}\\t{{.Tag}}"')

    # ---------------------------------------------------------------- 6.3
    c.md("""
    ## 6.3 删除本地镜像

    删除镜像用 `docker image rm`：

    ```
    docker image rm [选项] <镜像1> [<镜像2> ...]
    ```

    `<镜像>` 可以是**短 ID**、**长 ID**、**镜像名**或者**镜像摘要**。

    ### 用 ID、镜像名、摘要删除镜像

    `docker image ls` 显示的已经是短 ID（12 位）。手工输入时可以只取前几位（今天的引擎至少要 4 位），只要能和别的镜像区分开就行。
    下面先算出 `hello-world` 最短的、不和别人重复的 ID 前缀，再用它删除：
    """)
    c.code("""
    hello = lab.image("hello-world")["Id"].removeprefix("sha256:")
    others = [i.id.removeprefix("sha256:") for i in lab.images(all=True) if i.id != "sha256:" + hello]
    n = next(n for n in range(4, 65) if not any(o.startswith(hello[:n]) for o in others))
    short = hello[:n]
    print(f"hello-world 的 ID 是 {hello[:12]}…，取前 {n} 位就够了: {short}")
    """)
    c.code("!docker image rm {short}")
    c.md("""
    （以 `!` 开头的单元格交给 shell 执行，IPython 会先把 `{short}` 换成上面算出的 Python 变量的值。）也可以用**镜像名** `<仓库名>:<标签>` 删除。
    书中删的是 `centos`，我们删 `redis:7.0`：
    """)
    c.code("%docker image rm redis:7.0")
    c.md("""
    更精确的是用**镜像摘要**删除。先用 `--digests` 找到摘要：
    """)
    c.code("%docker image ls --digests nginx")
    c.code("""
    nginx_digest = lab.image("nginx:1.22")["RepoDigests"][0]   # 形如 nginx@sha256:...
    !docker image rm {nginx_digest}
    """)
    c.md("""
    ### Untagged 和 Deleted

    仔细看上面三次删除的输出，有两种行：`Untagged` 和 `Deleted`。

    - **Untagged**：取消一个名字（标签或摘要）。我们要求删除的其实是「某个名字所指的镜像」，
      所以第一步总是把满足要求的名字取消。
    - **Deleted**：真正删除镜像和层。只有当一个镜像**所有的名字都被取消**后，才会触发删除。

    书中的 Docker 用摘要删除时只取消摘要这一个名字，`nginx:1.22`、`nginx:latest` 两个标签还在，镜像一点没少。
    今天用 containerd 保存镜像的引擎把这个仓库里指向这个摘要的名字**都**取消了（上面两行 `Untagged`），
    于是镜像也被删除了。把它拉回来，再只删除其中一个标签——这次只是取消名字：
    """)
    c.code("""
    _ = lab.pull("nginx:1.22", progress=False), lab.pull("nginx:latest", progress=False)
    %docker image rm nginx:latest
    """)
    c.md("""
    镜像是多层的，删除镜像时，还被别的镜像使用的层会保留。`redis:7.0` 被删时，最底下的 Debian 层就留下了，
    因为 `debian:bookworm` 和 `nginx:1.22` 还在用它（书中的引擎逐层打印 `Deleted`，今天的引擎只打印镜像 ID 这一行）。
    课程的 `lab.remove()` 会把「为什么留下」也写出来。删除 `debian:bookworm` 试试：
    """)
    c.code('lab.remove("debian:bookworm")')
    c.md("""
    镜像 `debian:bookworm` 被删除了（`Deleted` 的是它的镜像 ID），但它唯一的一层留了下来：`nginx:1.22` 还建立在它上面。
    这也解释了为什么你删掉的层数常常和 `docker pull` 时看到的层数对不上。

    除了镜像之间的依赖，**容器**也依赖镜像：只要有用这个镜像创建的容器存在（哪怕已经停止），镜像就不能删除。
    先用 `greeting` 运行一个容器（不加 `--rm`，运行完留下一个已停止的容器），再试着删除镜像：
    """)
    c.code("""
    %docker run --name greeter dockerlab/greeting
    %docker image rm dockerlab/greeting
    """)
    c.md("引擎拒绝了。课程的 `lab.remove()` 给出同样的结论，附上该怎么办：")
    c.code('lab.remove("dockerlab/greeting")')
    c.md("不需要这个容器的话，先删除容器，再删除镜像：")
    c.code("""
    %docker rm greeter
    %docker image rm dockerlab/greeting
    """)
    c.md("""
    ### 用 `docker image ls` 配合批量删除

    `docker image ls -q` 输出一组 ID，可以直接作为 `docker image rm` 的参数，配合 6.2 的各种过滤器成批删除。
    比如删除所有仓库名为 `redis` 的镜像（先把刚删掉的 `redis:7.0` 拉回来）：
    """)
    c.code("""
    %docker pull redis:7.0
    %docker image ls -q redis
    """)
    c.code("%docker image rm $(docker image ls -q redis)")
    c.md("""
    （`$(…)` 是 shell 的命令替换：先执行括号里的命令，把它的输出放到这个位置。`%docker` 遇到 `$(` 会交给 bash 执行。）

    或者删除所有在某个镜像**之前**创建的镜像。书中是 `before=mongo:3.2`；我们本地现在比 `nginx:1.22` 早的是 busybox。
    `course/steps` 是从 `busybox:1.35` 构建的。书中的引擎不会删除还有「子镜像」的镜像，删 `course/steps` 时还会连带删除
    它的中间层镜像；今天的引擎没有中间层镜像，也不记录父子关系，共用的层只要还有镜像用着就会留下。先删 `course/steps`：
    """)
    c.code("%docker image rm course/steps:0.1")
    c.md("现在可以批量删除了：")
    c.code("""
    %docker image ls -f before=nginx:1.22
    %docker image rm $(docker image ls -q -f before=nginx:1.22)
    """)
    c.md("""
    ### CentOS/RHEL 的用户需要注意的事项

    书中这一节讲的是：当年的 CentOS/RHEL 内核没有 `aufs` 或 `overlay2` 这类联合文件系统，Docker 只能用 `devicemapper`
    驱动、借 LVM 的快照模拟分层存储；默认的 `loop-lvm` 模式用稀疏文件模拟块设备，既慢又不稳定，文件还会不停增长、
    删了镜像也不回收空间，所以生产环境必须配置 `direct-lvm`。
    """)
    c.now("""
    - `devicemapper` 在 Docker 18.09 被标记为弃用，23.0 起默认禁用，**Docker Engine 25.0 中已被移除**；
      `aufs` 也在 19.03 弃用、24.0 移除。今天所有发行版（包括 RHEL/CentOS 7.4 之后、以及它们的后继者）都用 **`overlay2`**，
      或者在用 containerd 保存镜像时（Docker 29 的默认）用 containerd 的 **`overlayfs`** 快照器，底层是同一个内核文件系统。
    - CentOS 7 已于 2024 年 6 月停止维护，CentOS Linux 这个发行版也不再发布新版本。
    - 看看本实验引擎用的存储驱动：
    """)
    c.code("%docker info --format 'Storage Driver: {{.Driver}}'")

    # ---------------------------------------------------------------- 6.4
    c.md("""
    ## 6.4 利用 commit 理解镜像构成

    > 注意：`docker commit` 除了帮助学习，只在少数特殊场合使用（比如服务器被入侵后保存现场）。
    > **不要用 `docker commit` 定制镜像**，定制镜像应该用 `Dockerfile`。

    回顾一下：镜像是多层存储，每一层都是在前一层基础上的修改；容器也是多层的——以镜像为基础层，
    在上面加一层**容器存储层**，容器运行时的一切写入都落在这一层。`docker commit` 就是把容器存储层保存下来，
    叠在原镜像上，成为一个新镜像。下面以定制一个 Web 服务器为例。

    书中的命令是 `docker run --name webserver -d -p 80:80 nginx`，把容器的 80 端口映射到主机的 80 端口。
    """)
    c.md("""
    > **本课程的写法**：主机的 80 端口在你的机器上可能已经被别的程序占用了，所以我们写 `-p 127.0.0.1::80`：
    > 主机端口留空，让 Docker 挑一个空闲端口；`127.0.0.1` 表示只在本机可以访问，不把服务暴露到网络上。
    > 用 `docker port` 查看挑中的端口。
    """)
    c.code("""
    %docker run --name webserver -d -p 127.0.0.1::80 nginx:1.22
    %docker port webserver 80
    """)
    c.md("""
    书中用浏览器打开 <http://localhost> 看 nginx 的欢迎页面。这里我们直接在笔记本里访问它。
    nginx 启动需要一点时间，`wait_page` 反复尝试，直到页面能打开（最多等 10 秒）：
    """)
    c.code("""
    import time, urllib.request

    def url_of(container):
        port = lab.container(container).ports["80/tcp"][0]["HostPort"]
        return f"http://127.0.0.1:{port}/"

    def wait_page(url, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            try:
                return urllib.request.urlopen(url, timeout=1).read().decode()
            except OSError:
                if time.monotonic() > deadline:
                    raise

    page = wait_page(url_of("webserver"))
    print(page[:page.index("</h1>") + 5])
    """)
    c.md("""
    假设我们不喜欢这个欢迎页面，想改成「Hello, Docker!」。书中用 `docker exec -it webserver bash` 进入容器，
    在里面的 shell 执行 `echo`。笔记本里没有交互终端，我们把同一条命令交给 `bash -c` 执行，效果一样：
    """)
    c.code("""
    %docker exec webserver bash -c "echo '<h1>Hello, Docker!</h1>' > /usr/share/nginx/html/index.html"
    print(wait_page(url_of("webserver")))
    """)
    c.md("""
    页面变了。我们改动的是容器的存储层，`docker diff` 能列出具体改了什么：`A` 是新增，`C` 是修改，`D` 是删除。
    课程的 `%diff` 把它画成一棵可以折叠的目录树（它的纯文本形式就是 `docker diff webserver` 的输出，按路径排序）：
    """)
    c.code("%diff webserver")
    c.md("""
    除了我们真正想改的 `index.html`，还有 nginx 运行时自己写下的文件（`/run/nginx.pid`、`/var/lib/nginx/…`）。
    书中的列表里还有 `/root/.bash_history`，那是交互式 bash 留下的——我们没开交互 shell，所以没有它。

    现在把改动保存成镜像。`docker commit` 的格式：

    ```
    docker commit [选项] <容器ID或容器名> [<仓库名>[:<标签>]]
    ```
    """)
    c.code('%docker commit --author "Docker Lab <lab@example.com>" --message "修改了默认网页" webserver nginx:v2')
    c.md("`--author` 写作者，`--message` 记录这次修改的内容，和 `git commit` 很像（这两项都可以省略）。新镜像出现在列表里：")
    c.code("%docker image ls nginx")
    c.md("用 `docker history` 查看镜像的历史，和 `nginx:1.22` 相比，最上面多了我们刚提交的一层：")
    c.code("%docker history nginx:v2")
    c.md("""
    `<missing>` 表示那一步不是本机上的一个镜像（它们是在别处构建、作为层拉下来的），不是出错。
    新加的那一层很小（几十 kB），正是 `%diff` 列出的那些改动：改过的 `index.html`、nginx 的 pid 文件和它建的几个目录。

    用新镜像运行一个容器 `web2`（书中映射到 81 端口，我们仍让 Docker 挑端口），访问它：
    """)
    c.code("""
    %docker run --name web2 -d -p 127.0.0.1::80 nginx:v2
    print(wait_page(url_of("web2")))
    """)
    c.code('check.expect_http(url_of("web2"), "Hello, Docker!")')
    c.md("新镜像和原镜像共用下面所有的层，只多了一层；两个容器各有一个自己的存储层：")
    c.code("%layers nginx:1.22 nginx:v2")
    c.md("""
    至此，我们第一次定制了镜像：用 `docker commit` 手工给旧镜像加了新的一层。

    ### 慎用 `docker commit`

    `docker commit` 让分层存储看得见摸得着，但实际工作中不这样做镜像：

    1. **镜像会臃肿**。看看上面 `%diff` 的结果：只改一个文件，就带进了好几个无关的文件。要是安装软件包、编译代码，
       会有大量缓存和临时文件被一起保存进去。
    2. **黑箱镜像**。除了做镜像的人，谁也不知道里面执行过什么命令、是怎么做出来的；过一段时间，做的人自己也记不清了。
       `docker diff` 只能给些线索，远不足以重新做出一个一样的镜像。
    3. **只增不减**。除当前层外，之前的每一层都不会再改变。用 commit 修改时，删掉上一层的文件只是在新的一层里做个标记，
       那个文件仍然跟着镜像，每修改一次镜像就更大一些。

    定制镜像的正确做法是把每一步写进 **Dockerfile**：做法透明、可以重复、可以审阅——这是下一章的内容。
    """)

    # ---------------------------------------------------------------- exercises
    c.md("## 自我检测")
    c.exercise(
        1, "拉取指定版本的镜像",
        "拉取 `busybox` 仓库里标签为 `1.35` 的镜像（6.3 的批量删除刚把它删掉了）。",
        "命令格式是 `docker pull 仓库名:标签`。",
        "%docker pull busybox:1.35",
        "# 在这里写你的命令\n",
        'check.expect_image("busybox:1.35")')
    c.exercise(
        2, "自己 commit 一个镜像",
        """在运行中的 `webserver` 容器里，把首页改成 `<h1>第六章完成</h1>`，然后把容器提交为镜像 `nginx:v3`。""",
        "先 `docker exec webserver bash -c \"echo '…' > /usr/share/nginx/html/index.html\"`，"
        "再 `docker commit webserver nginx:v3`。",
        """%docker exec webserver bash -c "echo '<h1>第六章完成</h1>' > /usr/share/nginx/html/index.html"
%docker commit webserver nginx:v3""",
        "# 在这里写你的命令\n",
        'check.expect_file_in_image("nginx:v3", "/usr/share/nginx/html/index.html", content="第六章完成")')
    c.exercise(
        3, "运行你的镜像",
        "用 `nginx:v3` 运行一个名为 `web3` 的容器，把它的 80 端口发布到本机，并确认页面是你写的内容。",
        "参照 `web2`：`docker run --name web3 -d -p 127.0.0.1::80 nginx:v3`；页面地址可以用上面的 `url_of(\"web3\")` 得到。",
        """%docker run --name web3 -d -p 127.0.0.1::80 nginx:v3
print(wait_page(url_of("web3")))""",
        "# 在这里写你的命令\n",
        """check.expect_container("web3", running=True, image="nginx:v3")""")

    # ---------------------------------------------------------------- summary + cleanup
    c.md("""
    ## 小结

    | 你想… | 命令 |
    |---|---|
    | 获取镜像 | `docker pull [Registry/]仓库名[:标签]` |
    | 用镜像运行一次命令，用完即删 | `docker run --rm 镜像 命令` |
    | 列出镜像 / 含中间层 / 只要 ID | `docker image ls` / `-a` / `-q` |
    | 过滤 | `-f dangling=true`、`-f since=…`、`-f before=…`、`-f label=…` |
    | 自定义输出 | `--digests`、`--format "{{.ID}}: {{.Repository}}"` |
    | 看实际磁盘占用 | `docker system df` |
    | 删除镜像 | `docker image rm 短ID/镜像名/镜像名@摘要`；清理虚悬镜像 `docker image prune` |
    | 看容器改了什么 / 保存为镜像 / 看镜像历史 | `docker diff` / `docker commit` / `docker history` |

    - 镜像由层组成，层按内容寻址、相同的层只存一份；标签只是指向镜像的名字，可以移动。
    - `Untagged` 是取消名字，`Deleted` 才是删除；被其他镜像或容器用着的东西不会被删。
    - `docker commit` 适合用来理解镜像，做镜像请用 Dockerfile。

    ## 收尾

    删除本章创建的容器和镜像，并把 `dockerlab/greeting:latest` 移回 `v1`，让其他章节和下一次运行从干净的状态开始：
    """)
    c.code(reset_line(CONTAINERS, IMAGES) + "\n"
           "!rm -rf /tmp/dockerlab-steps\n"
           '_ = registry.move_tag("dockerlab/greeting", "latest", "v1")\n'
           "_ = lab.cleanup()")
    return c
