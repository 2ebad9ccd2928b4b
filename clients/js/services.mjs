// What the client serves: the services the suite registers in the JS client and the
// arrow (callback) arguments of the cases. The reference run (reference.mjs) answers
// the client's calls with these same functions.

/** Client services by service id: function name -> implementation. */
export const clientServices = {
  greeter: { greet: (name) => `hello, ${name}` },
  counter: { inc: (n) => n + 1 },
  faulty: {
    explode: (why) => {
      throw new Error(why);
    },
  },
  // Answers long after every timeout of the cases (the particle is gone by then).
  slow: { wait: (ms) => new Promise((resolve) => setTimeout(() => resolve("waited"), ms)) },
};

/** Callbacks a case passes as `{"callback": NAME}`. */
export const callbacks = {
  bracket: (s) => `[${s}]`,
};
