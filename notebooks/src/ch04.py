"""第四章 安装 Docker — install commands as reading, a doctor cell, hello-world and its four steps."""

from cells import SETUP, Chapter, reset_line

IMAGES = "hello-world:latest"


def chapter() -> Chapter:
    c = Chapter("ch04", "04-install.ipynb")
    c.md("""
    # 第四章　安装 Docker

    **学完本章，你能够：**

    1. 读懂 Docker 的版本号，知道去哪里找各系统的安装方法；
    2. 像书中 4.1.7 和 4.2.9 那样检查一台机器上的 Docker 是否装好、装得是否健康；
    3. 运行 `hello-world`，说出它输出的四个步骤分别发生了什么。

    > 本课程的实验环境已经由 `./lab up` 装好（用的是 Debian 12 自带的 `docker.io` 软件包），
    > **本章的安装命令只供阅读，不在笔记本里执行**——它们需要 root 权限，会修改系统的软件源。
    """)
    c.md("## 准备")
    c.code(SETUP)
    c.code(reset_line(images=IMAGES, ancestors="hello-world"))
    c.md("""
    ## 版本命名

    书中写道：从 2017 年 3 月起（1.13 之后），Docker 的版本号改为 `YY.MM` 格式，分为免费的社区版 **CE** 和付费的企业版 **EE**；
    CE 每月发布一个 Edge 版，每季度发布一个 Stable 版。
    """)
    c.now("""
    - **Edge 通道在 2020 年取消**，只剩 stable（和 test）。
    - **企业版（EE）**在 2019 年随企业业务卖给了 Mirantis，改名 Mirantis Container Runtime。「CE」这个叫法随之淡出，
      今天开源的引擎就叫 **Docker Engine**，安装包名仍是 `docker-ce`。
    - 2023 年的 **23.0** 起，版本号改为语义化版本（23.0、24.0、25.0……），不再表示年月。
    - 本实验用的是 Debian unstable 打包的 Docker 28.5（`docker.io` 软件包，Debian 官方维护，不需要额外的软件源），
      以**无 root 模式**（rootless）运行在一个普通账户下，用 containerd 保存镜像。
    """)
    c.code("%docker version | grep -v StateDir   # grep 去掉一行只属于这台机器的目录")
    c.md("""
    ## 4.1 Ubuntu 安装 Docker

    **卸载旧版本**（旧版本叫 `docker`、`docker-engine` 或 `docker.io`）：

    ```bash
    $ sudo apt-get remove docker docker-engine docker.io
    ```

    **Ubuntu 14.04 的可选内核模块**：AUFS 驱动在 `linux-image-extra-*` 包里：

    ```bash
    $ sudo apt-get update
    $ sudo apt-get install linux-image-extra-$(uname -r) linux-image-extra-virtual
    ```

    **Ubuntu 16.04+ 用 APT 安装**（书中用阿里云的软件源）：

    ```bash
    sudo apt-get update
    sudo apt-get -y install apt-transport-https ca-certificates curl software-properties-common
    curl -fsSL http://mirrors.aliyun.com/docker-ce/linux/ubuntu/gpg | sudo apt-key add -
    sudo add-apt-repository "deb [arch=amd64] http://mirrors.aliyun.com/docker-ce/linux/ubuntu $(lsb_release -cs) stable"
    sudo apt-get -y update
    sudo apt-get -y install docker-ce
    ```

    **用脚本自动安装**（测试、开发环境）：

    ```bash
    $ curl -fsSL get.docker.com -o get-docker.sh
    $ sudo sh get-docker.sh --mirror Aliyun
    ```

    **启动**：

    ```bash
    $ sudo systemctl enable docker
    $ sudo systemctl start docker
    $ sudo service docker start          # Ubuntu 14.04
    ```
    """)
    c.now("""
    - 书中列出的 Ubuntu 14.04/16.04/17.10 都早已停止支持；Docker 官方现在支持仍在维护期内的 Ubuntu LTS 和非 LTS 版本
      （以 <https://docs.docker.com/engine/install/ubuntu/> 为准）。AUFS 已从 Docker 中移除（24.0），不再需要 `linux-image-extra`。
    - **`apt-key` 已被弃用**。现在的做法是把 GPG 公钥放进 `/etc/apt/keyrings/docker.asc`，在软件源一行里用
      `signed-by=/etc/apt/keyrings/docker.asc` 指明；`apt-transport-https` 也不再需要。官方文档给出的完整命令还会一并安装
      `docker-ce-cli`、`containerd.io`、`docker-buildx-plugin`、`docker-compose-plugin`。
    - `get.docker.com` 脚本仍然可用，`--mirror Aliyun`、`--mirror AzureChinaCloud` 选项也还在；书中「2018 年 7 月阿里云脚本
      不可用」的特别说明已经过时。
    - 不想添加 Docker 的软件源，也可以用发行版自己的包：Debian/Ubuntu 的 `docker.io`（本实验就是这样装的）。
    """)
    c.md("""
    ### 4.1.6 建立 docker 用户组

    `docker` 命令默认通过 Unix socket 和引擎通信，而只有 `root` 和 `docker` 组的用户能访问这个 socket。
    出于安全考虑，一般不直接用 root，而是把用户加进 `docker` 组：

    ```bash
    $ sudo groupadd docker
    $ sudo usermod -aG docker $USER
    ```

    然后退出终端重新登录。注意：**`docker` 组的成员等同于 root**——能启动容器，就能把主机的任何目录挂进容器里读写。

    ### 4.1.7 测试 Docker 是否安装正确

    下面这个「体检」单元格检查书中提到的各项：客户端能否连上引擎、两边的版本、当前用户有没有访问 socket 的权限、
    存储驱动、`docker info` 报告的警告，以及 4.2.9 的 `bridge-nf-call` 内核参数。
    """)
    c.code("""
    import grp, os, pwd

    info = lab.client.info()
    ver = lab.client.version()
    sock = lab.config.docker_host.removeprefix("unix://")
    st = os.stat(sock)
    user = pwd.getpwuid(os.getuid()).pw_name
    groups = [g.gr_name for g in grp.getgrall() if user in g.gr_mem] + [grp.getgrgid(os.getgid()).gr_name]

    def bridge_nf(name):
        try:
            return open(f"/proc/sys/net/bridge/{name}").read().strip()
        except OSError:
            return "（br_netfilter 模块未加载）"

    rows = [
        ("引擎能连上", lab.ping(), f"API {ver['ApiVersion']}"),
        ("引擎版本", True, ver["Version"]),
        ("访问 socket 的权限", os.access(sock, os.R_OK | os.W_OK),
         "socket 属于当前用户（rootless 模式的引擎）" if st.st_uid == os.getuid()
         else "当前用户是超级用户，本身就有权限" if os.getuid() == 0
         else "当前用户在 docker 组" if "docker" in groups else "当前用户不在 docker 组"),
        ("存储驱动是 overlay 类", info["Driver"] in ("overlay2", "overlayfs"), info["Driver"]),
        ("docker info 没有警告", not info.get("Warnings"), "; ".join(info.get("Warnings") or []) or "无"),
        ("bridge-nf-call-iptables = 1", bridge_nf("bridge-nf-call-iptables") == "1", bridge_nf("bridge-nf-call-iptables")),
        ("bridge-nf-call-ip6tables = 1", bridge_nf("bridge-nf-call-ip6tables") == "1", bridge_nf("bridge-nf-call-ip6tables")),
    ]
    for what, ok, detail in rows:
        print(f"{'✔' if ok else '⚠'} {what:24} {detail}")
    """)
    c.md("""
    最后的检查，也是书里的检查：运行 `hello-world`。
    """)
    c.code("%docker run hello-world")
    c.md("""
    这个 `hello-world` 是本课程自己编译的（一个 13 kB 的静态 C 程序），文字和 Docker 官方的略有不同，但四个步骤一样。
    对照上面的输出看：

    1. **客户端联系守护进程**：`docker run` 把请求通过 socket 发给了 `dockerd`（就是第三章我们手工发的那种 HTTP 请求）。
    2. **守护进程拉取镜像**：本地没有 `hello-world:latest`（`Unable to find image … locally`），于是从 Registry 拉取——
       书中是 Docker Hub，这里是实验环境的加速器。输出开头的 `Pulling from library/hello-world`、`Pull complete` 就是这一步。
    3. **守护进程用镜像创建容器**，容器运行镜像里的程序，程序写出你读到的文字。
    4. **守护进程把输出流回客户端**，客户端显示在终端（这里是笔记本）里。

    刚才运行完的容器还在（没有加 `--rm`），状态是 Exited：
    """)
    c.code("%docker ps -a --filter ancestor=hello-world --format '{{.Image}} {{.Status}}'")
    c.md("""
    ## 4.2 CentOS 安装 Docker

    > 书中的警告：不要在没有配置 Docker YUM 源的情况下直接用 yum 安装 Docker。

    卸载旧版本、安装依赖、添加软件源、安装：

    ```bash
    $ sudo yum remove docker docker-client docker-client-latest docker-common docker-latest \\
                      docker-latest-logrotate docker-logrotate docker-selinux docker-engine-selinux docker-engine
    $ sudo yum install -y yum-utils device-mapper-persistent-data lvm2
    $ sudo yum-config-manager --add-repo https://mirrors.ustc.edu.cn/docker-ce/linux/centos/docker-ce.repo
    $ sudo yum-config-manager --enable docker-ce-edge      # 想要最新版
    $ sudo yum-config-manager --enable docker-ce-test      # 想要测试版
    $ sudo yum makecache fast
    $ sudo yum install docker-ce
    ```

    脚本安装、启动、建立 `docker` 组、测试的命令和 Ubuntu 相同。

    ### 4.2.9 添加内核参数

    如果 `docker info` 出现 `WARNING: bridge-nf-call-iptables is disabled`，书中的做法是：

    ```bash
    $ sudo tee -a /etc/sysctl.conf <<-EOF
    net.bridge.bridge-nf-call-ip6tables = 1
    net.bridge.bridge-nf-call-iptables = 1
    EOF
    $ sudo sysctl -p
    ```

    上面的体检单元格已经检查过这两个参数在这台机器上的值。
    """)
    c.now("""
    - **CentOS 7 已在 2024 年 6 月停止维护**，CentOS Linux 8 更早（2021 年底）就结束了；CentOS 项目转向 CentOS Stream。
      Docker 官方现在支持 CentOS Stream 9 及更新版本和 RHEL，安装命令用 `dnf`（`dnf config-manager --add-repo …`），
      也不再需要 `device-mapper-persistent-data lvm2`（devicemapper 驱动已在 Docker 25.0 移除）。
    - `yum makecache fast` 在新的 dnf 上没有 `fast` 参数，写 `dnf makecache` 即可。
    - RHEL/CentOS 8 起自带的是 Podman，和 Docker 的软件包有冲突，安装 `docker-ce` 前要先卸载 `podman`、`buildah`。
    """)
    c.md("""
    ## 4.3 树莓派安装 Docker

    树莓派（ARM 架构，Raspbian 系统）的步骤和 Ubuntu 一样，只是软件源换成 `raspbian`、架构写 `armhf`：

    ```bash
    $ sudo apt-get update
    $ sudo apt-get install apt-transport-https ca-certificates curl gnupg2 lsb-release software-properties-common
    $ curl -fsSL https://mirrors.ustc.edu.cn/docker-ce/linux/raspbian/gpg | sudo apt-key add -
    $ sudo add-apt-repository "deb [arch=armhf] https://mirrors.ustc.edu.cn/docker-ce/linux/raspbian $(lsb_release -cs) stable"
    $ sudo apt-get update
    $ sudo apt-get install docker-ce
    $ docker run arm32v7/hello-world
    ```

    ARM 机器不能运行 x86 的镜像。看看这台机器和课程镜像是什么架构：
    """)
    c.code("""
    %docker info --format '引擎所在机器的架构: {{.Architecture}}'
    %docker image inspect hello-world --format '镜像的架构: {{.Os}}/{{.Architecture}}'
    """)
    c.now("""
    Raspbian 已改名 **Raspberry Pi OS**。今天的官方镜像大多是**多架构镜像**：同一个名字（如 `hello-world`）背后有
    amd64、arm64、arm/v7 等多个版本，`docker pull` 会自动选择和本机匹配的那个，不必再写 `arm32v7/` 前缀。
    64 位的 Raspberry Pi OS 按 Debian 的方法安装；Docker 官方已宣布 v28 是支持 32 位 Raspberry Pi OS（armhf）的最后一个大版本。
    """)
    c.md("""
    ## 4.4 macOS 安装 Docker · 4.5 Windows 安装 Docker

    书中介绍的是 Docker for Mac（`brew cask install docker`，或下载 `Docker.dmg`）和 Docker for Windows（需要 Windows 10 专业版并开启 Hyper-V），
    安装后检查版本、运行一个 nginx：

    ```bash
    $ docker --version
    $ docker-compose --version
    $ docker-machine --version
    $ docker run -d -p 80:80 --name webserver nginx
    $ docker stop webserver
    $ docker rm webserver
    ```

    其中 `docker run -d -p 80:80 --name webserver nginx` 和收尾的 `stop`、`rm`，第六章 6.4 会完整地做一遍。
    """)
    c.now("""
    - 两者现在统一叫 **Docker Desktop**；Homebrew 的写法改成了 `brew install --cask docker`。Docker Toolbox 已停止维护。
    - Windows 上的 Docker Desktop 现在默认用 **WSL 2**，Windows 10/11 家庭版也能用，不再强制 Hyper-V。
    - Docker Desktop 对大型企业（员工超过 250 人或年收入超过 1000 万美元）需要付费订阅（2021 年起）。
    - `docker-compose`（Python 写的 v1）已在 2023 年停止维护，换成了 Go 写的 **`docker compose`**（Docker CLI 的插件，中间是空格）；
      `docker-machine` 已归档。
    """)
    c.md("## 自我检测")
    c.exercise(
        1, "再跑一次 hello-world",
        "用 `--rm` 再运行一次 `hello-world`，让它运行完就被删除。这一次输出开头还会有 `Unable to find image` 吗？为什么？",
        "镜像在第一次运行时已经拉到本地了；`--rm` 只影响容器。",
        "%docker run --rm hello-world",
        "# 在这里写你的命令\n",
        'check.expect_image("hello-world")')
    c.exercise(
        2, "读出存储驱动",
        "用 `docker info` 的 `--format` 只输出存储驱动的名字，把结果（一个字符串）赋给变量 `driver`。",
        "模板里的字段名是 `.Driver`；要把命令的输出变成 Python 变量，可以用 `!` 的写法：`x = !docker …`，它返回一个行列表。",
        """out = !docker info --format '{{.Driver}}'
driver = out[0]""",
        "driver = None  # 改成你的答案\n",
        """from kernel_ext.check import CheckResult
CheckResult(driver == lab.client.info()["Driver"], f"正确：存储驱动是 {driver}" if driver == lab.client.info()["Driver"]
            else "还不对：用 docker info --format '{{.Driver}}' 读出来")""")
    c.md("""
    ## 小结

    - 安装方法随系统而变、随时间而变：以 <https://docs.docker.com/engine/install/> 为准；发行版自带的 `docker.io` 也是一个选择。
    - 装好后检查：`docker version` 两端都有版本，`docker info` 没有警告，用户有访问 socket 的权限，`docker run hello-world` 成功。
    - `hello-world` 的四步：客户端发请求 → 守护进程拉镜像 → 创建并运行容器 → 输出流回客户端。

    ## 收尾
    """)
    c.code(reset_line(images=IMAGES, ancestors="hello-world"))
    return c
