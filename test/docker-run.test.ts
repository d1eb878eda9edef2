// Which container a process unit's `docker run` command line starts, for the fence to kill it through the engine.
import { describe, expect, it } from "vitest";
import { dockerRunTarget } from "../src/agent/docker-run.ts";

const words = (line: string) => line.split(" ");

describe("dockerRunTarget", () => {
  it("finds the name and the engine of a docker run", () => {
    expect(dockerRunTarget(words("/usr/bin/docker run --rm --name busybox1 busybox /bin/sh"), {})).toEqual({
      name: "busybox1",
      socket: "/var/run/docker.sock",
    });
    expect(
      dockerRunTarget(words("docker -H unix:///tmp/d.sock run -v /a:/b --name=web -p 80:80 nginx"), {}),
    ).toEqual({ name: "web", socket: "/tmp/d.sock" });
    expect(
      dockerRunTarget(words("/usr/bin/docker container run --name db pg"), {
        DOCKER_HOST: "unix:///run/e.sock",
      }),
    ).toEqual({ name: "db", socket: "/run/e.sock" });
    expect(
      dockerRunTarget(words("docker --host=unix:///x.sock --log-level warn run --name a i"), {}),
    ).toEqual({
      name: "a",
      socket: "/x.sock",
    });
  });

  it("is null for anything else", () => {
    expect(dockerRunTarget(words("/usr/bin/docker kill busybox1"), {})).toBeNull();
    expect(dockerRunTarget(words("/usr/bin/docker run busybox"), {})).toBeNull(); // no name to find it by
    expect(dockerRunTarget(words("docker -H tcp://127.0.0.1:2375 run --name a i"), {})).toBeNull();
    expect(dockerRunTarget(words("/bin/sh -c docker run --name a i"), {})).toBeNull();
    expect(dockerRunTarget(words("/usr/bin/dockerd run --name a"), {})).toBeNull();
  });
});
