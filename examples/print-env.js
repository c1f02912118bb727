// Print the environment agents see (scripting.env). Values set as secrets
// are still readable here, so print only the names of those.
var secretish = /TOKEN|SECRET|KEY|PASSWORD/i;

function describeEnv() {
  var names = Object.keys(env).sort();
  for (var i = 0; i < names.length; i++) {
    var name = names[i];
    console.log(name + "=" + (secretish.test(name) ? "<set>" : env[name]));
  }
  console.log("node:", utils.nodeName(), "variables:", names.length);
}

describeEnv();
