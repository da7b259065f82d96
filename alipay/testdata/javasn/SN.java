import java.io.*;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.cert.*;

public class SN {
    public static void main(String[] args) throws Exception {
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        for (String f : args) {
            X509Certificate c = (X509Certificate) cf.generateCertificate(new FileInputStream(f));
            String name = c.getIssuerX500Principal().getName();
            // AntCertificationUtil.getCertSN: md5(issuer + serial), fillMD5 pads to 32
            MessageDigest md = MessageDigest.getInstance("MD5");
            md.update((name + c.getSerialNumber()).getBytes(StandardCharsets.UTF_8));
            String sn = new BigInteger(1, md.digest()).toString(16);
            while (sn.length() < 32) sn = "0" + sn;
            System.out.println(f + "\t" + sn + "\t" + name);
        }
    }
}
