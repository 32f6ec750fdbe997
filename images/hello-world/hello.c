/* The course's hello-world: a static program, as small as the real one, explaining a first run. */
#include <unistd.h>
#include <string.h>

static const char msg[] =
"\n"
"Hello from Docker Lab!\n"
"This message shows that your Docker Engine appears to be working correctly.\n"
"\n"
"To print this message, Docker took these steps:\n"
" 1. The Docker client sent your command to the Docker daemon over its API socket.\n"
" 2. The daemon did not have the \"hello-world\" image, so it pulled it from the\n"
"    registry (in this course: the lab's registry mirror, which stands in for Docker Hub).\n"
" 3. The daemon created a new container from that image; the container ran this\n"
"    program, which wrote the text you are reading.\n"
" 4. The daemon streamed that output back to the Docker client, which showed it\n"
"    in your terminal.\n"
"\n"
"Next, try something bigger:\n"
" $ docker run -it --rm debian:bookworm bash\n"
"\n";

int main(void) {
    return write(1, msg, sizeof msg - 1) == (ssize_t)(sizeof msg - 1) ? 0 : 1;
}
