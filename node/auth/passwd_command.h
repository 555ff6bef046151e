// SPDX-License-Identifier: Apache-2.0
// `mqttctl passwd`: adds, changes or deletes a user in a password file (Mosquitto's format,
// password_file.h), writing the $7$ (PBKDF2-SHA512) form that mosquitto_passwd writes.
//
//   mqttctl passwd [-c] FILE USER            password from the terminal (asked twice) or stdin
//   mqttctl passwd [-c] -b FILE USER PASSWORD
//   mqttctl passwd -D FILE USER
//
// -c creates (or empties) the file. The file is replaced atomically (written beside it, then
// renamed), mode 0600 when new. Exit status: 0 done, 1 error, 2 usage.
//
// Threading: a command-line entry point; runs on the caller's thread.
#pragma once

namespace mqtt::auth {

// argv[0] is the first argument after "passwd".
int PasswdMain(int argc, char** argv);

}  // namespace mqtt::auth
