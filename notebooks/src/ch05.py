"""第五章 Docker 镜像加速器 — the lab's registry mirror, daemon.json, a pull timed, what became of docker-cn."""

from cells import SETUP, Chapter, reset_line

IMAGES = "nginx:1.22 nginx:latest redis:7.0 redis:latest debian:bookworm debian:12 debian:latest"


def chapter() -> Chapter:
    c = Chapter("ch05", "05-mirror.ipynb")
    c.md("""
    # 第五章　Docker 镜像加速器

    从 Docker Hub 拉取镜像有时很慢。**镜像加速器**（registry mirror）是一个放在你附近的 Docker Hub 缓存：
    引擎先向它要镜像，它没有时再去 Docker Hub 取，取回来顺便存一份，下次就直接给。

    **学完本章，你能够：**

    1. 在 `docker info` 里找到引擎正在使用的加速器；
    2. 写出配置加速器的 `daemon.json`，并知道为什么它必须是合法的 JSON；
    3. 说明加速器对哪些镜像名起作用、对哪些不起作用；
    4. 了解书中推荐的加速器今天的状况。
    """)
    c.md("## 准备")
    c.code(SETUP)
    c.code(reset_line(images=IMAGES))
    c.md("""
    ## 5.5 检查加速器是否生效

    先从书中最后一节开始：配置好的加速器，会出现在 `docker info` 的 `Registry Mirrors` 一项里。本实验的引擎配置了一个：
    """)
    c.code("!docker info 2>/dev/null | grep -A1 'Registry Mirrors'")
    c.md("""
    这个地址就是实验环境的加速器（端口号因环境而异）：一个开启了 proxy（pull-through cache）模式的 Registry，
    它的上游是另一个扮演 Docker Hub 的本地 Registry。

    ## 5.1 / 5.2 配置加速器

    书中给了两种写法。老的 upstart 系统（Ubuntu 14.04、Debian 7）在 `/etc/default/docker` 里写启动参数：

    ```bash
    DOCKER_OPTS="--registry-mirror=https://registry.docker-cn.com"
    $ sudo service docker restart
    ```

    用 systemd 的系统（Ubuntu 16.04+、Debian 8+、CentOS 7）写 `/etc/docker/daemon.json`：

    ```json
    {
      "registry-mirrors": [
        "https://registry.docker-cn.com"
      ]
    }
    ```

    然后重启服务：

    ```bash
    $ sudo systemctl daemon-reload
    $ sudo systemctl restart docker
    ```

    本实验的引擎读的是课程目录下的一个 daemon.json，内容是：
    """)
    c.code("""
    import json, os
    path = os.path.join(os.environ.get("LAB_HOME", "../.lab"), "engine", "daemon-lab.json")
    config = json.load(open(path))
    print(json.dumps(config, indent=2, ensure_ascii=False))
    """)
    c.md("""
    书中特别提醒：**这个文件一定要是合法的 JSON，否则 Docker 将不能启动**。dockerd 启动时先解析它，
    解析失败就直接退出。手写 JSON 最常见的错误是多一个逗号、或者用了单引号：
    """)
    c.code("""
    bad = '''{
      "registry-mirrors": [
        "https://registry.docker-cn.com",
      ]
    }'''
    try:
        json.loads(bad)
    except json.JSONDecodeError as e:
        print("不是合法的 JSON:", e)
    """)
    c.md("""
    dockerd 遇到这样的文件，会报 `unable to configure the Docker daemon with file /etc/docker/daemon.json: invalid character ']'…`
    然后退出，`systemctl status docker` 会显示启动失败。改之前用 `python3 -m json.tool /etc/docker/daemon.json` 检查一遍是个好习惯。

    > 书中还提醒：如果照旧教程在 `docker.service` 里加过 `--registry-mirror`，要删掉——同一个选项同时出现在命令行和
    > daemon.json 里，dockerd 同样会拒绝启动。

    ## 5.3 / 5.4 Windows 10 与 macOS

    在 Docker Desktop 的 *Settings* 里修改（书中的界面路径是 *Daemon → Registry mirrors*），应用后 Docker 会重启。
    """)
    c.now("""
    新版 Docker Desktop 没有单独的 Daemon 页了：在 *Settings → Docker Engine* 里直接编辑一段 daemon.json，
    写法和上面 Linux 的完全一样，然后点 *Apply & restart*。
    """)
    c.md("""
    ## 加速器对哪些镜像起作用

    `registry-mirrors` **只对 Docker Hub 上的镜像**起作用：`nginx`、`dockerlab/greeting` 这种不带 Registry 地址的名字。
    名字里带了地址的（如第三章的 `127.0.0.1:5000/course/busybox`），引擎直接去那个地址，不经过加速器。

    加速器是一个缓存，拉过的东西它都存着。用 Registry API 问一问加速器，它手里有 nginx 的哪些标签：
    """)
    c.code('registry.tags("nginx", registry=lab.config.mirror)')
    c.md("""
    现在拉取 `nginx:1.22` 并计时。本地没有这个镜像，要下载所有的层；加速器里已经有了，所以不必去「Docker Hub」：
    """)
    c.code("""
    import time
    t0 = time.perf_counter()
    r = lab.pull("nginx:1.22", progress=False)
    first = time.perf_counter() - t0
    print(r.summary())
    """)
    c.md("再拉一次：本地已经有了，引擎只向加速器确认一下摘要没变，一层都不用下载：")
    c.code("""
    t0 = time.perf_counter()
    r2 = lab.pull("nginx:1.22", progress=False)
    second = time.perf_counter() - t0
    print(r2.status)
    """)
    c.code("""
    print(f"第一次（下载所有层）: {first:.2f} s")
    print(f"第二次（本地已有）  : {second:.2f} s")
    """, "nbval-ignore-output")
    c.md("""
    （时间每次运行都不一样，这个单元格的输出不参与自动检查。）在这台机器上，加速器、上游仓库和引擎都在本机，
    所以第一次也很快；真实世界里，第一次的时间主要花在跨越网络下载上——加速器的意义就是让这段网络尽量短，
    并且让同一个机房、同一所学校的很多台机器共用一份缓存。
    """)
    c.now("""
    - 书中使用的 `https://registry.docker-cn.com`（Docker 官方的中国镜像）**早已停止服务**，现在无法访问；
      把它写进 daemon.json 只会让每次拉取先失败一次再退回 Docker Hub。
    - 2024 年年中起，国内多家高校和公共的 Docker Hub 加速器也相继停止或限制了服务。今天常见的做法是：
      使用云服务商提供给自己用户的专属加速地址（需要登录控制台获取），或者像本实验一样，在内网自建一个 pull-through cache
      （官方 Registry 的 `proxy.remoteurl` 配置、或 Harbor 的代理缓存项目）。
    - 加速器只缓存 Docker Hub；`ghcr.io`、`quay.io` 等其他 Registry 的镜像不受 `registry-mirrors` 影响。
    """)
    c.md("## 自我检测")
    c.exercise(
        1, "读出加速器地址",
        "用 `docker info` 的 `--format` 读出引擎配置的加速器列表，把第一个地址（字符串）赋给变量 `mirror`。",
        "字段是 `.RegistryConfig.Mirrors`，用 `{{json …}}` 可以得到 JSON；`x = !docker …` 得到输出的行列表。",
        """out = !docker info --format '{{json .RegistryConfig.Mirrors}}'
mirror = json.loads(out[0])[0]""",
        "mirror = None  # 改成你的答案\n",
        """from kernel_ext.check import CheckResult
want = lab.client.info()["RegistryConfig"]["Mirrors"][0]
CheckResult(mirror == want, "正确" if mirror == want else "还不对：docker info 里 Registry Mirrors 下面那一行就是")""")
    c.exercise(
        2, "经过加速器拉取",
        "拉取 `debian:bookworm`，然后用 `registry.tags(\"debian\", registry=lab.config.mirror)` 确认加速器里有这个标签。",
        "`docker pull debian:bookworm`。",
        """%docker pull debian:bookworm
registry.tags("debian", registry=lab.config.mirror)""",
        "# 在这里写你的命令\n",
        'check.expect_image("debian:bookworm")')
    c.md("""
    ## 小结

    - 加速器是 Docker Hub 的缓存；在 `/etc/docker/daemon.json` 的 `registry-mirrors` 里配置，重启 Docker 生效，
      用 `docker info` 的 `Registry Mirrors` 检查。
    - daemon.json 必须是合法的 JSON，否则 dockerd 无法启动。
    - 加速器只对 Docker Hub 的镜像名起作用；书中的 `registry.docker-cn.com` 已不可用。

    ## 收尾
    """)
    c.code(reset_line(images=IMAGES))
    return c
