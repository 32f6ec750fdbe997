"""Messages shared by the whole package (each module may register more of its own)."""

from .messages import register

register({
    "engine.down": {
        "zh": "连接不上 Docker 引擎 {host} 。请在终端运行 ./lab up 启动实验环境，然后重新运行本单元格。",
        "en": "Cannot reach the Docker Engine at {host} . Run ./lab up in a terminal, then run this cell again.",
    },
    "image.notfound": {
        "zh": "找不到镜像 {ref}：检查名字和标签是否拼写正确（可用 docker image ls 查看本地镜像）。",
        "en": "No image {ref}: check the name and tag (docker image ls lists local images).",
    },
    "image.notfound.remote": {
        "zh": "仓库里没有镜像 {ref}：检查名字和标签；本课程的仓库提供 hello-world、busybox、debian、nginx、redis 等镜像。",
        "en": "The registry has no image {ref}: check the name and tag; the course registry offers hello-world, busybox, debian, nginx, redis and more.",
    },
    "container.notfound": {
        "zh": "找不到容器 {name}：用 docker ps -a 查看现有容器的名字。",
        "en": "No container {name}: docker ps -a lists the containers there are.",
    },
    "ref.bad": {
        "zh": "“{ref}” 不是合法的镜像名：形如 仓库名:标签（例如 nginx:latest），只能用小写字母、数字和 . _ - /。",
        "en": "\"{ref}\" is not a valid image reference: use repository:tag (e.g. nginx:latest), lower-case letters, digits and . _ - / only.",
    },
    "name.conflict": {
        "zh": "名字 {name} 已被占用：换一个名字，或先删除同名的容器（docker rm -f {name}）。",
        "en": "The name {name} is already in use: pick another or remove that container first (docker rm -f {name}).",
    },
    "port.taken": {
        "zh": "端口 {port} 已被占用：换一个主机端口（例如 -p {alt}:80），或先停掉占用它的容器。",
        "en": "Port {port} is already taken: use another host port (e.g. -p {alt}:80) or stop what uses it.",
    },
    "registry.down": {
        "zh": "连接不上镜像仓库：请运行 ./lab up（它会启动仓库和镜像加速器），然后重试。（{detail}）",
        "en": "Cannot reach the registry: run ./lab up (it starts the registry and the mirror), then retry. ({detail})",
    },
    "image.in_use": {
        "zh": "无法删除 {ref}：容器 {container} 正在使用它。先删除该容器（docker rm {container}），或使用 force=True。",
        "en": "Cannot remove {ref}: container {container} uses it. Remove that container first (docker rm {container}) or use force=True.",
    },
    "container.failed": {
        "zh": "容器中的命令失败了（退出码 {code}）：{detail}",
        "en": "The command in the container failed (exit code {code}): {detail}",
    },
    "cleanup.done": {
        "zh": "已清理本会话创建的 {containers} 个容器、{images} 个镜像、{volumes} 个卷、{networks} 个网络",
        "en": "Removed what this session made: {containers} containers, {images} images, {volumes} volumes, {networks} networks",
    },
    "engine.error": {
        "zh": "Docker 引擎拒绝了这个操作：{detail}",
        "en": "The Docker Engine refused: {detail}",
    },

    "pull.title": {"zh": "正在拉取 {ref}", "en": "Pulling {ref}"},
    "pull.done": {"zh": "已拉取 {ref}：{n} 层（下载 {new} 层，{old} 层本地已有），共 {size}",
                  "en": "Pulled {ref}: {n} layers ({new} downloaded, {old} already present), {size}"},
    "pull.phase.download": {"zh": "下载", "en": "download"},
    "pull.phase.extract": {"zh": "解压", "en": "extract"},
    "pull.phase.done": {"zh": "完成", "en": "done"},
    "pull.uptodate": {"zh": "{ref} 本地已是最新（{status}），没有下载任何层",
                      "en": "{ref} is already up to date locally ({status}); no layer was downloaded"},
    "pull.present": {"zh": "本地已有", "en": "already present"},
})
