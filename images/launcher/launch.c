/*
 * The launcher of pre-started `default` containers (executor/pool/prestart.py).
 *
 * A pre-started container is created and started before its call exists, so its
 * environment cannot hold the call's own variables (FN_CALL_ID, FN_DEADLINE, FN_HEADER_*,
 * ...). The executor bind-mounts this static binary read-only into the container as its
 * entrypoint, with the image's own entrypoint and command as its arguments. It blocks on
 * stdin until the call comes, reads the call's environment from a framed header there,
 * and runs the image's program, which reads the rest of stdin: the call's body.
 *
 *   header:  "EXR1", a 16-byte nonce, a 4-byte big-endian length N, then N bytes of
 *            NUL-terminated KEY=VALUE entries (each set in the environment, replacing a
 *            value there)
 *   trailer: when the program exits, the nonce and its 4-byte big-endian exit status
 *            (128 + the signal when killed by one, as the engine says), written to
 *            stdout and to stderr, each after all the program wrote there
 *
 * The trailer is why it forks rather than execs: the engine closes a container's output
 * about 30 ms after its process exits (the container's teardown), and reports the exit no
 * sooner; the trailer answers the call as the program exits. The nonce is in no
 * environment and the launcher is not dumpable, so the program cannot forge the trailer
 * (it could only cut its own call short). Without a trailer (the launcher itself killed,
 * by the OOM killer say), the executor waits for the engine as for a cold container.
 *
 * It needs no capability, no shell and no writable file: it runs as the route's user on
 * a read-only root, in any image (FROM scratch included). It reads stdin one exact
 * length at a time, so not one byte of the body is taken from the program.
 *
 * Exit statuses of its own, before the program runs (after, it exits with the program's):
 *   0    stdin ended before any header: the container was retired unused
 *   126  the header is malformed (never sent by the executor), or fork failed
 *   127  the program is not found or cannot be run: checked before waiting, so a route
 *        whose image has no such program fails its pre-starts, not its calls
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAGIC "EXR1"
#define NONCE 16
#define HEADER_MAX (16u << 20)

static int read_exactly(void *buf, size_t len) {
    /* 1 when read whole, 0 at EOF before any byte, -1 on a short read or an error. */
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(0, (char *)buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return got == 0 && n == 0 ? 0 : -1;
        got += (size_t)n;
    }
    return 1;
}

static int runnable(const char *file) {
    /* Whether execvp would find `file`: by its path when it has a '/', else on PATH. */
    if (strchr(file, '/'))
        return access(file, X_OK) == 0;
    const char *path = getenv("PATH");
    if (path == NULL)
        path = "/usr/local/bin:/usr/bin:/bin";
    size_t flen = strlen(file);
    while (*path) {
        const char *end = strchrnul(path, ':');
        size_t dlen = (size_t)(end - path);
        char candidate[4096];
        if (dlen + flen + 2 <= sizeof candidate) {
            memcpy(candidate, dlen ? path : ".", dlen ? dlen : 1);
            size_t at = dlen ? dlen : 1;
            candidate[at] = '/';
            memcpy(candidate + at + 1, file, flen + 1);
            if (access(candidate, X_OK) == 0)
                return 1;
        }
        path = *end ? end + 1 : end;
    }
    return 0;
}

static void fail(int status, const char *what, const char *detail) {
    fprintf(stderr, "executor launcher: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(status);
}

int main(int argc, char **argv) {
    if (argc < 2)
        fail(127, "no program to run", NULL);
    if (!runnable(argv[1]))
        fail(127, "program not found or not executable", argv[1]);

    /* Not dumpable: a process of the same user cannot read the nonce from its memory. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    unsigned char head[4 + NONCE + 4];
    int got = read_exactly(head, sizeof head);
    if (got == 0)
        return 0;
    if (got < 0 || memcmp(head, MAGIC, 4) != 0)
        fail(126, "malformed call header", NULL);
    const unsigned char *size = head + 4 + NONCE;
    uint32_t len = (uint32_t)size[0] << 24 | (uint32_t)size[1] << 16 | (uint32_t)size[2] << 8 | size[3];
    if (len > HEADER_MAX)
        fail(126, "call header too long", NULL);
    char *entries = malloc((size_t)len + 1);
    if (entries == NULL)
        fail(126, "out of memory for the call header", NULL);
    if (len && read_exactly(entries, len) != 1)
        fail(126, "call header cut short", NULL);
    entries[len] = '\0';
    /* putenv keeps the pointer: the buffer lives until the exec. */
    for (char *entry = entries; entry < entries + len; entry += strlen(entry) + 1) {
        if (strchr(entry, '=') == NULL || putenv(entry) != 0)
            fail(126, "malformed call header entry", NULL);
    }

    pid_t child = fork();
    if (child < 0)
        fail(126, "cannot fork", strerror(errno));
    if (child == 0) {
        execvp(argv[1], argv + 1);
        fail(127, "cannot run the program", strerror(errno));
    }
    close(0);
    int wstatus;
    while (waitpid(child, &wstatus, 0) < 0) {
        if (errno != EINTR)
            fail(126, "cannot wait for the program", strerror(errno));
    }
    int status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    unsigned char trailer[NONCE + 4];
    memcpy(trailer, head + 4, NONCE);
    trailer[NONCE] = 0;
    trailer[NONCE + 1] = 0;
    trailer[NONCE + 2] = 0;
    trailer[NONCE + 3] = (unsigned char)status;
    /* Each in one write (20 bytes, under PIPE_BUF), after all the program wrote there. */
    (void)!write(1, trailer, sizeof trailer);
    (void)!write(2, trailer, sizeof trailer);
    return status;
}
